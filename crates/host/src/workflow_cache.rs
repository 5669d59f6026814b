//! Large workflow files validated once: the validated form (the stored spec a run keeps) is
//! kept in the disk cache beside the compiled plugins, so running the same file again reads a
//! compact JSON instead of parsing and checking its YAML. Reading YAML is most of the start of a
//! large run: about 0.6 s of 5 MB for 100,000 tasks in a debug build.
//!
//! An entry is found by a key over everything validation depends on: the file's bytes, the
//! path it was named by (relative plugin paths are resolved against it), and this very build of
//! Bulkhead (a validator that changes meets no entry of another). Validation looks at the disk
//! only for mount folders, so a workflow with mounts is never cached: its folders are checked
//! afresh every time. Small files are not cached either: reading them is cheaper than the cache.
//!
//! An entry carries the same HMAC tag as compiled code (it decides a task's limits and grants),
//! and an entry that cannot be read back, or reads back as a different file, is ignored with a
//! warning and replaced: the cache can only cost time, never change what runs.

use bulkhead_core::workflow::{self, Workflow, WorkflowError};
use bulkhead_sandbox::Sandbox;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::OnceLock;

/// Files smaller than this are validated every time (a 64 KiB file of about 1,500 tasks takes a
/// few milliseconds).
pub const MIN_CACHED_BYTES: usize = 64 * 1024;

/// This build of Bulkhead: its version and its executable's size and change time. `None` when
/// the executable cannot be looked at (then nothing is cached).
fn build_identity() -> Option<&'static str> {
    static IDENTITY: OnceLock<Option<String>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            let meta = std::fs::metadata(exe).ok()?;
            let changed = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!(
                "{} {} {}",
                env!("CARGO_PKG_VERSION"),
                meta.len(),
                changed.as_nanos()
            ))
        })
        .as_deref()
}

/// The key of `text` read from `file` by this build, or `None` when it is not to be cached.
fn key(file: &Path, text: &str) -> Option<String> {
    if text.len() < MIN_CACHED_BYTES {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"bulkhead validated workflow 1\0");
    h.update(build_identity()?.as_bytes());
    h.update(b"\0");
    h.update(file.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(text.as_bytes());
    Some(hex::encode(h.finalize()))
}

/// Whether a task of `wf` mounts a host folder (validation checked it on disk).
fn mounts(wf: &Workflow) -> bool {
    wf.tasks.iter().any(|t| !t.grants.mounts.is_empty())
}

/// A workflow read by [`parse`].
#[derive(Debug)]
pub struct Parsed {
    /// The validated workflow.
    pub workflow: Workflow,
    /// Its stored form, when it was built or read here (the run records it as it is).
    pub spec: Option<String>,
    /// Whether it came from the cache (`false`: validated now).
    pub from_cache: bool,
}

/// Validates `text` (read from `file`), or reads its validated form from the cache of
/// `sandbox` when this build validated the same bytes of the same path before.
pub fn parse(sandbox: &Sandbox, file: &Path, text: &str) -> Result<Parsed, WorkflowError> {
    let Some(key) = key(file, text) else {
        return Ok(Parsed {
            workflow: workflow::parse(text, file)?,
            spec: None,
            from_cache: false,
        });
    };
    if let Some(bytes) = sandbox.cached_workflow(&key) {
        match String::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|spec| Ok((workflow::stored::from_spec(&spec)?, spec)))
        {
            Ok((wf, spec)) if wf.file == file && !mounts(&wf) => {
                tracing::debug!(file = %file.display(), "validated workflow read from the cache");
                return Ok(Parsed {
                    workflow: wf,
                    spec: Some(spec),
                    from_cache: true,
                });
            }
            Ok(_) => {
                tracing::warn!(file = %file.display(), "ignoring a cached validated workflow of another file")
            }
            Err(reason) => {
                tracing::warn!(file = %file.display(), %reason, "ignoring an unreadable cached validated workflow")
            }
        }
    }
    let wf = workflow::parse(text, file)?;
    if mounts(&wf) {
        return Ok(Parsed {
            workflow: wf,
            spec: None,
            from_cache: false,
        });
    }
    let spec = workflow::stored::to_spec(&wf);
    sandbox.cache_workflow(&key, spec.as_bytes());
    Ok(Parsed {
        workflow: wf,
        spec: Some(spec),
        from_cache: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sandbox(cache: &Path) -> Sandbox {
        Sandbox::builder()
            .slots(1)
            .cache_dir(cache.to_path_buf())
            .build()
            .unwrap()
    }

    /// A chain of `n` tasks, `extra` written into the last one.
    fn chain(n: usize, extra: &str) -> String {
        let mut text = String::from("name: big\ntasks:\n  t0: {plugin: noop}\n");
        for i in 1..n {
            text.push_str(&format!("  t{i}: {{plugin: noop, needs: [t{}]", i - 1));
            if i == n - 1 {
                text.push_str(extra);
            }
            text.push_str("}\n");
        }
        text
    }

    fn entries(cache: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(cache)
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p: &PathBuf| p.extension().is_some_and(|e| e == "workflow"))
            .collect()
    }

    #[test]
    fn a_large_file_is_validated_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let sb = sandbox(&dir.path().join("cache"));
        let file = dir.path().join("big.yaml");
        let text = chain(3000, ", params: {k: [1, 2]}, priority: 3");
        assert!(text.len() >= MIN_CACHED_BYTES);
        let first = parse(&sb, &file, &text).unwrap();
        assert!(!first.from_cache);
        assert_eq!(entries(&dir.path().join("cache")).len(), 1);
        let again = parse(&sb, &file, &text).unwrap();
        assert!(again.from_cache);
        let spec = |wf: &Workflow| workflow::stored::to_spec(wf);
        assert_eq!(spec(&again.workflow), spec(&first.workflow));
        assert_eq!(again.spec.as_deref(), Some(spec(&first.workflow).as_str()));
        assert_eq!(again.workflow.tasks[2999].priority, 3);
        assert_eq!(again.workflow.tasks[2999].needs, vec![2998]);
    }

    #[test]
    fn another_text_or_another_path_is_validated_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let sb = sandbox(&dir.path().join("cache"));
        let file = dir.path().join("big.yaml");
        let text = chain(3000, "");
        parse(&sb, &file, &text).unwrap();
        // One more task: the cached form must not be what this text means.
        let edited = chain(3001, "");
        let parsed = parse(&sb, &file, &edited).unwrap();
        assert!(!parsed.from_cache);
        assert_eq!(parsed.workflow.tasks.len(), 3001);
        // The same bytes under another name: paths in the workflow follow the file.
        let moved = dir.path().join("sub/big.yaml");
        let parsed = parse(&sb, &moved, &text).unwrap();
        assert!(!parsed.from_cache);
        assert_eq!(parsed.workflow.file, moved);
        // An edit that breaks the file is refused every time, whatever was cached before.
        let broken = chain(3000, "}\n  bad: {plugin: noop, needs: [nowhere]");
        for _ in 0..2 {
            let err = parse(&sb, &file, &broken).unwrap_err().to_string();
            assert!(err.contains("nowhere"), "{err}");
        }
        assert_eq!(entries(&dir.path().join("cache")).len(), 3);
    }

    #[test]
    fn small_files_and_mounts_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let sb = sandbox(&cache);
        let file = dir.path().join("w.yaml");
        let small = chain(10, "");
        for _ in 0..2 {
            assert!(!parse(&sb, &file, &small).unwrap().from_cache);
        }
        // A mount is checked on disk: a folder gone since must be refused, not remembered.
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let mounted = chain(3000, ", mounts: [{host: data, guest: /data}]");
        assert!(!parse(&sb, &file, &mounted).unwrap().from_cache);
        assert!(entries(&cache).is_empty());
        std::fs::remove_dir(dir.path().join("data")).unwrap();
        let err = parse(&sb, &file, &mounted).unwrap_err().to_string();
        assert!(err.contains("mounts[0].host"), "{err}");
    }

    #[test]
    fn a_damaged_entry_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let sb = sandbox(&cache);
        let file = dir.path().join("big.yaml");
        let text = chain(3000, "");
        parse(&sb, &file, &text).unwrap();
        let [entry] = &entries(&cache)[..] else {
            panic!("one entry expected")
        };
        let mut bytes = std::fs::read(entry).unwrap();
        let end = bytes.len() - 1;
        bytes[end] = b'!';
        std::fs::write(entry, &bytes).unwrap();
        let parsed = parse(&sb, &file, &text).unwrap();
        assert!(!parsed.from_cache, "a damaged entry is not used");
        assert_eq!(parsed.workflow.tasks.len(), 3000);
        assert!(
            parse(&sb, &file, &text).unwrap().from_cache,
            "it was replaced"
        );
    }

    #[test]
    fn without_a_cache_folder_every_load_validates() {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::builder().slots(1).build().unwrap();
        let file = dir.path().join("big.yaml");
        let text = chain(3000, "");
        for _ in 0..2 {
            assert!(!parse(&sb, &file, &text).unwrap().from_cache);
        }
    }
}
