//! Plugin copies of a PostgreSQL store: kept in the database (so any host of the cluster can
//! resume any run) and cached in a local folder (which the sandbox loads from). A copy is
//! uploaded once per hash and fetched on a host that lacks it; the folder checks every copy's
//! hash as it is kept.

use bulkhead::{FolderVault, PluginVault, PostgresStore};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The vault of a PostgreSQL store.
pub struct DatabaseVault {
    local: FolderVault,
    db: PostgresStore,
    /// Hashes known to be in the database already (no query per run for them).
    stored: Mutex<HashSet<String>>,
}

impl DatabaseVault {
    /// Copies in `db`, cached in the folder `local`.
    pub fn new(db: PostgresStore, local: PathBuf) -> DatabaseVault {
        DatabaseVault {
            local: FolderVault::new(local),
            db,
            stored: Mutex::new(HashSet::new()),
        }
    }
}

/// Runs a store call from the vault's synchronous interface, on the runtime's worker thread
/// that called it (the executor's other tasks move to other workers meanwhile).
fn wait<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| "plugin copies in PostgreSQL are read from within the runtime".to_string())?;
    Ok(tokio::task::block_in_place(|| handle.block_on(f)))
}

impl PluginVault for DatabaseVault {
    fn keep(&self, file: &Path, hash: &str) -> Result<(), String> {
        // The folder checks that the bytes hash to `hash`; the database gets that checked copy.
        self.local.keep(file, hash)?;
        if self
            .stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(hash)
        {
            return Ok(());
        }
        let copy = self.local.file(hash)?;
        let reader = std::fs::File::open(&copy)
            .map_err(|e| format!("cannot read {}: {e}", copy.display()))?;
        wait(async {
            if !self.db.has_plugin(hash).await? {
                self.db
                    .put_plugin(hash, std::io::BufReader::new(reader))
                    .await?;
            }
            Ok::<_, bulkhead::store::StoreError>(())
        })?
        .map_err(|e| e.to_string())?;
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash.to_string());
        Ok(())
    }

    fn file(&self, hash: &str) -> Result<PathBuf, String> {
        if let Ok(path) = self.local.file(hash) {
            return Ok(path);
        }
        // Another host kept it: fetch it into a private temporary file, then let the folder
        // keep it (checking its hash), as if it were a plugin loaded here.
        let dir = self.local.location();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let tmp = tempfile_in(&dir)?;
        let found = {
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?,
            );
            let found = wait(self.db.get_plugin(hash, &mut out))?.map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            found
        };
        let kept = if found {
            self.local.keep(&tmp, hash).map_err(|e| {
                format!("the copy of {hash} in {} does not match its hash ({e}); the database was altered", self.db.name().display())
            })
        } else {
            Err(format!(
                "no copy of {hash} here or in {}",
                self.db.name().display()
            ))
        };
        let _ = std::fs::remove_file(&tmp);
        kept?;
        self.local.file(hash)
    }

    fn prune(&self, keep: &HashSet<String>) -> Result<usize, String> {
        let removed = self.local.prune(keep)?;
        let keep: Vec<String> = keep.iter().cloned().collect();
        let gone = wait(self.db.prune_plugins(&keep))?.map_err(|e| e.to_string())?;
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(removed.max(gone))
    }

    fn location(&self) -> PathBuf {
        self.local.location()
    }
}

/// A new file name in `dir` that no other call (of any process) uses.
fn tempfile_in(dir: &Path) -> Result<PathBuf, String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(dir.join(format!(".fetch.{}.{n}.tmp", std::process::id())))
}
