//! The on-disk cache of compiled plugins, keyed by the module's content hash and the engine's
//! compatibility hash, so the second run of a workflow compiles nothing.
//!
//! The cache holds native code, so nothing is loaded from it unless it is proven to be ours:
//! every file carries an HMAC-SHA256 tag made with a key kept beside the cache folder (never
//! inside it, 0600), checked before wasmtime sees a byte. The folder is created 0700, and a
//! folder that others can write, or that another user owns, is not used at all. Every cache
//! problem is a warning, never a failure: a missing, refused or read-only cache only costs time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// What starts every cache file, before the 32-byte tag.
const MAGIC: &[u8; 8] = b"BHCACHE1";

/// Where compiled modules are kept.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    engine_key: String,
}

impl ModuleCache {
    /// A cache in `dir` (created on first store) for modules compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ModuleCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    /// The file name of an entry: its key, the engine's, and what it holds (`cwasm` for
    /// compiled code, `workflow` for a validated workflow).
    fn name(&self, key: &str, kind: &str) -> String {
        format!("{key}-{}.{kind}", self.engine_key)
    }

    #[cfg(test)]
    fn path(&self, content_hash: &str) -> PathBuf {
        self.dir.join(self.name(content_hash, "cwasm"))
    }

    /// The file holding the key: beside the cache folder, so that nothing that can write the
    /// cache can also forge a tag.
    fn key_path(&self) -> PathBuf {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cache".into());
        self.dir.with_file_name(format!("{name}.key"))
    }

    /// The MAC key, created (0600) on first use; `None` if it cannot be had.
    fn key(&self, create: bool) -> Option<Vec<u8>> {
        let path = self.key_path();
        match std::fs::read(&path) {
            Ok(k) if k.len() == 32 && private(&path, false) => return Some(k),
            Ok(_) => {
                tracing::warn!(file = %path.display(), "the compiled-plugin cache key is damaged or readable by others; not using the cache");
                return None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {}
            Err(_) => return None,
        }
        let key: [u8; 32] = rand::random();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()));
        match written {
            Ok(()) => Some(key.to_vec()),
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.key(false),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot create the compiled-plugin cache key; plugins will be compiled every time");
                None
            }
        }
    }

    /// Whether the folder may be trusted: ours, and writable by nobody else.
    fn usable(&self) -> bool {
        if !self.dir.exists() {
            return false;
        }
        if private(&self.dir, true) {
            return true;
        }
        tracing::warn!(dir = %self.dir.display(), "the compiled-plugin cache folder is writable by others or not owned by this user; not using it (chmod 700 it, or delete it)");
        false
    }

    /// The cached module for this content hash, if there is one whose tag is right.
    pub fn get(&self, engine: &Engine, content_hash: &str) -> Option<Module> {
        self.get_with(&self.name(content_hash, "cwasm"), |payload| {
            deserialize(engine, payload)
        })
    }

    /// The cached component (ABI v2) for this content hash, if there is one whose tag is right.
    pub fn get_component(
        &self,
        engine: &Engine,
        content_hash: &str,
    ) -> Option<wasmtime::component::Component> {
        self.get_with(&self.name(content_hash, "cwasm"), |payload| {
            deserialize_component(engine, payload)
        })
    }

    /// A validated workflow's stored form kept under `key` by [`ModuleCache::put_workflow`], if
    /// its tag is right. It carries the same tag as compiled code: it decides what a task may
    /// reach (limits, grants), so nothing that can write the cache may forge one.
    pub fn get_workflow(&self, key: &str) -> Option<Vec<u8>> {
        self.get_with(&self.name(key, "workflow"), |payload| Ok(payload.to_vec()))
    }

    /// Keeps a validated workflow's stored form under `key`, like [`ModuleCache::put`].
    pub fn put_workflow(&self, key: &str, spec: &[u8]) {
        self.put_with(&self.name(key, "workflow"), || Ok(spec.to_vec()));
    }

    fn get_with<T>(
        &self,
        name: &str,
        deserialize: impl FnOnce(&[u8]) -> wasmtime::Result<T>,
    ) -> Option<T> {
        let path = self.dir.join(name);
        if !path.is_file() || !self.usable() {
            return None;
        }
        let key = self.key(false)?;
        let bytes = std::fs::read(&path).ok()?;
        let Some(payload) = verified(&key, name, &bytes) else {
            tracing::warn!(file = %path.display(), "ignoring a file in the cache whose tag is wrong (altered, or written with another key)");
            return None;
        };
        match deserialize(payload) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring an unusable file in the cache");
                None
            }
        }
    }

    /// Stores a compiled module (atomically: a reader never sees half a file).
    pub fn put(&self, content_hash: &str, module: &Module) {
        self.put_with(&self.name(content_hash, "cwasm"), || module.serialize());
    }

    /// Stores a compiled component, like [`ModuleCache::put`].
    pub fn put_component(&self, content_hash: &str, component: &wasmtime::component::Component) {
        self.put_with(&self.name(content_hash, "cwasm"), || component.serialize());
    }

    fn put_with(&self, name: &str, serialize: impl FnOnce() -> wasmtime::Result<Vec<u8>>) {
        let path = self.dir.join(name);
        let result = (|| -> std::io::Result<()> {
            if !self.dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)?;
            }
            if !self.usable() {
                return Ok(());
            }
            let Some(key) = self.key(true) else {
                return Ok(());
            };
            let payload = serialize().map_err(|e| std::io::Error::other(e.to_string()))?;
            let Some(tag) = tag(&key, name, &payload) else {
                return Ok(());
            };
            let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + payload.len());
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(&tag);
            bytes.extend_from_slice(&payload);
            let tmp = self.dir.join(format!(".{}.tmp", uuid::Uuid::now_v7()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the compiled-plugin cache; plugins will be compiled again next time");
        }
    }
}

/// Deletes the oldest entries (compiled plugins, validated workflows) of `dir` until it holds
/// at most `max_bytes`, and any leftover temporary file. Returns the bytes freed.
pub(super) fn prune(dir: &Path, max_bytes: u64) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    let mut freed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = e.metadata() else { continue };
        if name.starts_with('.') && name.ends_with(".tmp") {
            if std::fs::remove_file(&path).is_ok() {
                freed += meta.len();
            }
        } else if (name.ends_with(".cwasm") || name.ends_with(".workflow")) && meta.is_file() {
            let at = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            files.push((at, meta.len(), path));
        }
    }
    files.sort();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            freed += len;
        }
    }
    freed
}

/// Whether `path` belongs to this user and nobody else can write it (or, for a file that is not
/// a folder, read it either).
fn private(path: &Path, folder: bool) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let mode = meta.permissions().mode();
    let others = if folder { 0o022 } else { 0o077 };
    meta.uid() == rustix::process::geteuid().as_raw() && mode & others == 0
}

/// The MAC over a file's name (which plugin, which engine) and its bytes: a file moved to
/// another plugin's name does not verify.
fn mac(key: &[u8], name: &str, payload: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(name.as_bytes());
    mac.update(&[0]);
    mac.update(payload);
    Some(mac)
}

fn tag(key: &[u8], name: &str, payload: &[u8]) -> Option<[u8; 32]> {
    Some(mac(key, name, payload)?.finalize().into_bytes().into())
}

/// The payload of a cache file whose tag is right for `name`.
fn verified<'a>(key: &[u8], name: &str, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (tag, payload) = rest.split_at(32);
    mac(key, name, payload)?.verify_slice(tag).ok()?;
    Some(payload)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: wasmtime requires bytes produced by `Module::serialize` of a compatible engine.
    // These bytes carry an HMAC-SHA256 tag made by `put` with a key that only this user can
    // read and that lives outside the cache folder; the tag was checked just before this call,
    // so they are bytes `put` wrote. wasmtime checks the engine header again.
    unsafe { Module::deserialize(engine, payload) }
}

#[allow(unsafe_code)]
fn deserialize_component(
    engine: &Engine,
    payload: &[u8],
) -> wasmtime::Result<wasmtime::component::Component> {
    // SAFETY: as for `deserialize`: the tag was checked just before, so these are bytes that
    // `put_component` wrote from `Component::serialize`; wasmtime checks the engine header and
    // refuses a module's bytes as a component.
    unsafe { wasmtime::component::Component::deserialize(engine, payload) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn module(engine: &Engine) -> Module {
        // The empty module, in binary (no text parser in this build).
        Module::new(engine, b"\0asm\x01\0\0\0").unwrap()
    }

    #[test]
    fn a_cached_module_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let cache = ModuleCache::new(dir.path().join("cache"), &e);
        cache.put("abc", &module(&e));
        assert!(cache.get(&e, "abc").is_some());
        let mode = std::fs::metadata(dir.path().join("cache"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let key = std::fs::metadata(dir.path().join("cache.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key & 0o777, 0o600);
    }

    #[test]
    fn a_swapped_or_altered_cache_file_is_never_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let cache = ModuleCache::new(dir.path().join("cache"), &e);
        cache.put("victim", &module(&e));
        cache.put("attacker", &module(&e));
        // Swapping one plugin's compiled code for another's: the tag covers the name too.
        let victim = cache.path("victim");
        std::fs::copy(cache.path("attacker"), &victim).unwrap();
        assert!(cache.get(&e, "victim").is_none(), "swapped file");
        assert!(cache.get(&e, "attacker").is_some());
        cache.put("victim", &module(&e));
        let mut bytes = std::fs::read(&victim).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&victim, &bytes).unwrap();
        assert!(cache.get(&e, "victim").is_none(), "altered bytes");
        // Raw wasmtime output without our tag (what a plugin would craft) is refused too.
        std::fs::write(&victim, module(&e).serialize().unwrap()).unwrap();
        assert!(cache.get(&e, "victim").is_none(), "untagged bytes");
        // A file tagged with another key (another user's cache) is refused.
        let other = tempfile::tempdir().unwrap();
        let theirs = ModuleCache::new(other.path().join("cache"), &e);
        theirs.put("victim", &module(&e));
        std::fs::copy(theirs.path("victim"), &victim).unwrap();
        assert!(cache.get(&e, "victim").is_none(), "another key");
    }

    #[test]
    fn a_cached_workflow_is_read_back_only_with_its_tag_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let cache = ModuleCache::new(dir.path().join("cache"), &e);
        assert_eq!(cache.get_workflow("wf"), None, "nothing kept yet");
        cache.put_workflow("wf", br#"{"format":2}"#);
        assert_eq!(
            cache.get_workflow("wf").as_deref(),
            Some(&br#"{"format":2}"#[..])
        );
        // A compiled plugin of the same key is another entry: neither reads as the other.
        cache.put("wf", &module(&e));
        assert!(cache.get(&e, "wf").is_some());
        assert_eq!(
            cache.get_workflow("wf").as_deref(),
            Some(&br#"{"format":2}"#[..])
        );
        // A stored workflow edited by hand (say, to raise a task's limits) is refused.
        let file = dir.path().join("cache").join(cache.name("wf", "workflow"));
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 2;
        bytes[last] = b'3';
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(cache.get_workflow("wf"), None, "altered workflow");
        // Another workflow's entry copied over it is refused too: the tag covers the name.
        cache.put_workflow("other", b"{}");
        std::fs::copy(
            dir.path()
                .join("cache")
                .join(cache.name("other", "workflow")),
            &file,
        )
        .unwrap();
        assert_eq!(cache.get_workflow("wf"), None, "swapped workflow");
    }

    #[test]
    fn a_cache_folder_others_can_write_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let cache = ModuleCache::new(dir.path().join("cache"), &e);
        cache.put("abc", &module(&e));
        std::fs::set_permissions(
            dir.path().join("cache"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        assert!(cache.get(&e, "abc").is_none());
    }

    #[test]
    fn prune_keeps_the_cache_under_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine();
        let cache = ModuleCache::new(dir.path().join("cache"), &e);
        for name in ["a", "b", "c"] {
            cache.put(name, &module(&e));
        }
        // A cached workflow counts against the bound like compiled code.
        cache.put_workflow("d", &[b' '; 100]);
        std::fs::write(dir.path().join("cache/.left.tmp"), b"x").unwrap();
        let one = std::fs::metadata(cache.path("a")).unwrap().len();
        assert!(prune(&dir.path().join("cache"), one) > 0);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .flatten()
            .collect();
        // Without the workflow counted, `c` would have stayed beside it.
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].file_name().to_string_lossy().ends_with(".workflow"));
    }
}
