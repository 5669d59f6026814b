//! The on-disk cache of compiled plugins, keyed by the module's content hash and the engine's
//! compatibility hash, so the second run of a workflow compiles nothing.
//!
//! The cache holds native code: its folder must be as trusted as the `bulkhead` binary. Every
//! cache error is a warning, never a failure: a missing or read-only cache only costs time.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

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

    fn path(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.cwasm", self.engine_key))
    }

    /// The cached module for this content hash, if there is a usable one.
    pub fn get(&self, engine: &Engine, content_hash: &str) -> Option<Module> {
        let path = self.path(content_hash);
        if !path.is_file() {
            return None;
        }
        match deserialize(engine, &path) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unusable compiled plugin in the cache");
                None
            }
        }
    }

    /// Stores a compiled module (atomically: a reader never sees half a file).
    pub fn put(&self, content_hash: &str, module: &Module) {
        let path = self.path(content_hash);
        let result = module
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| {
                std::fs::create_dir_all(&self.dir)?;
                let tmp = self.dir.join(format!(".{}.tmp", uuid::Uuid::now_v7()));
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, &path).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })
            });
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the compiled-plugin cache; plugins will be compiled again next time");
        }
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: wasmtime requires that the file was produced by `Module::serialize` of a compatible
    // engine. Only `put` writes `.cwasm` files into the cache folder, under a name that carries
    // the engine's compatibility hash, and wasmtime checks that header again. The folder is
    // documented as trusted (docs/limits.md).
    unsafe { Module::deserialize_file(engine, path) }
}
