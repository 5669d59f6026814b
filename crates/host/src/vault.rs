//! Where a host keeps the exact plugin bytes each run started with, by content hash, so that a
//! resumed or retried run loads the same code even after the plugin folder changed.
//!
//! [`PluginVault`] is the contract; [`FolderVault`] keeps the copies in a local folder
//! (`<store>-plugins/`). A database-backed vault (one row per hash, for several hosts) is the
//! next implementation; the host knows only the trait.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Keeps plugin copies by the SHA-256 of their bytes.
pub trait PluginVault: Send + Sync {
    /// Keeps the bytes of `file` as `hash` unless a copy is there; checks that they still hash
    /// to `hash` (the file may have changed since it was loaded).
    fn keep(&self, file: &Path, hash: &str) -> Result<(), String>;

    /// A local file holding the copy `hash`, to load it from; an error when there is none.
    fn file(&self, hash: &str) -> Result<PathBuf, String>;

    /// Deletes every copy whose hash is not in `keep`; returns how many went.
    fn prune(&self, keep: &HashSet<String>) -> Result<usize, String>;

    /// Where the copies are, for messages (a folder's path).
    fn location(&self) -> PathBuf;
}

/// Plugin copies as `<hash>.wasm` files in one folder.
#[derive(Debug, Clone)]
pub struct FolderVault {
    dir: PathBuf,
}

impl FolderVault {
    /// The vault in `dir` (created when the first copy is kept).
    pub fn new(dir: impl Into<PathBuf>) -> FolderVault {
        FolderVault { dir: dir.into() }
    }
}

/// A name Bulkhead wrote: `<sha-256 in hex>`, never a plugin someone named.
fn is_hash(stem: &str) -> bool {
    stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit())
}

impl PluginVault for FolderVault {
    fn keep(&self, file: &Path, hash: &str) -> Result<(), String> {
        copy_plugin(&self.dir, file, hash)
    }

    fn file(&self, hash: &str) -> Result<PathBuf, String> {
        if !is_hash(hash) {
            return Err(format!(
                "`{hash}` is not a plugin hash; the state store was altered"
            ));
        }
        let path = self.dir.join(format!("{hash}.wasm"));
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} is missing", path.display()))
        }
    }

    fn prune(&self, keep: &HashSet<String>) -> Result<usize, String> {
        if !self.dir.is_dir() {
            return Ok(0);
        }
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if path.extension().is_some_and(|e| e == "wasm")
                && is_hash(stem)
                && !keep.contains(stem)
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn location(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// Copies `file` to `dir/<hash>.wasm` unless it is there; checks the bytes still hash to `hash`.
fn copy_plugin(dir: &Path, file: &Path, hash: &str) -> Result<(), String> {
    let target = dir.join(format!("{hash}.wasm"));
    if target.is_file() {
        return Ok(());
    }
    let fail = |what: String| what;
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let bytes =
        std::fs::read(file).map_err(|e| fail(format!("cannot read {}: {e}", file.display())))?;
    if hex::encode(Sha256::digest(&bytes)) != hash {
        return Err(fail(format!(
            "{} changed while it was being loaded; run again",
            file.display()
        )));
    }
    // A name of its own per call: runs of one process keep the same plugin at the same time,
    // and a shared temporary name lets one rename the other's file away.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{hash}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(format!(
                "cannot keep a copy of {} in {}: {e}",
                file.display(),
                dir.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keeping_the_same_plugin_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        std::fs::write(&plugin, b"\0asm same").unwrap();
        let hash = hex::encode(Sha256::digest(b"\0asm same"));
        let vault = FolderVault::new(dir.path().join("copies"));
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| vault.keep(&plugin, &hash).unwrap());
            }
        });
        assert_eq!(
            std::fs::read(vault.file(&hash).unwrap()).unwrap(),
            b"\0asm same"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("copies"))
            .unwrap()
            .collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    }

    #[test]
    fn a_folder_vault_keeps_checks_finds_and_prunes_copies() {
        let dir = tempfile::tempdir().unwrap();
        let vault = FolderVault::new(dir.path().join("copies"));
        let plugin = dir.path().join("p.wasm");
        std::fs::write(&plugin, b"\0asm one").unwrap();
        let hash = hex::encode(Sha256::digest(b"\0asm one"));
        assert!(vault.file(&hash).unwrap_err().contains("missing"));
        vault.keep(&plugin, &hash).unwrap();
        let kept = vault.file(&hash).unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), b"\0asm one");
        // The file changed after it was loaded: its bytes no longer match the hash.
        std::fs::write(&plugin, b"\0asm two").unwrap();
        let other = hex::encode(Sha256::digest(b"\0asm one, loaded"));
        assert!(vault.keep(&plugin, &other).unwrap_err().contains("changed"));
        assert!(
            vault.file("../../etc/passwd").is_err(),
            "only hashes name copies"
        );
        // Pruning spares what is kept and anything Bulkhead did not name.
        std::fs::write(dir.path().join("copies/mine.wasm"), b"x").unwrap();
        assert_eq!(vault.prune(&HashSet::from([hash.clone()])).unwrap(), 0);
        assert_eq!(vault.prune(&HashSet::new()).unwrap(), 1);
        assert!(vault.file(&hash).is_err());
        assert!(dir.path().join("copies/mine.wasm").exists());
    }
}
