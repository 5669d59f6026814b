//! Subcommands and what they share: the state directory, the host, the async runtime.

pub mod bench;
pub mod graph;
pub mod history;
pub mod progress;
pub mod run;
pub mod serve;
pub mod summary;
pub mod vault;

use bulkhead::sandbox::compile::{CompileBounds, Compiler};
use bulkhead::sandbox::Abi;
use bulkhead::store::Store;
use bulkhead::{Commits, SqliteStore};
use bulkhead::{Guarded, Host, HostConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code: the workflow, a plugin or the arguments are invalid; nothing ran.
pub const EXIT_INVALID: u8 = 2;

/// The default state store, beside the working directory.
pub const DEFAULT_STORE: &str = ".bulkhead/bulkhead.db";

/// `--plugins DIR`.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginsArg {
    /// Folder of `.wasm` plugins, looked up by name.
    #[arg(
        long = "plugins",
        value_name = "DIR",
        default_value = "plugins",
        env = "BULKHEAD_PLUGINS"
    )]
    pub dir: PathBuf,
}

/// An open store, with where the plugin copies of its runs are kept.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The plugin copies (a folder beside a SQLite file; the database for PostgreSQL).
    pub vault: Option<Arc<dyn bulkhead::PluginVault>>,
    /// The local folder of copies (which no mount may reach).
    pub copies: Option<PathBuf>,
}

/// Where state lives: the store file and the compiled-plugin cache.
#[derive(Debug, Clone)]
pub struct State {
    /// `--store PATH` (`:memory:` keeps runs in memory only).
    pub store: PathBuf,
    /// `--cache-dir`.
    pub cache_dir: PathBuf,
    /// `--max-module-size`, `--compile-timeout`, `--compile-memory`.
    pub compile: CompileBounds,
}

impl State {
    /// Opens the store. The default location's folder is created; an explicit path's folder must
    /// exist. A SQLite file commits with a writer thread ([`Commits::Grouped`]).
    pub async fn open_store(&self) -> Result<Opened, ExitCode> {
        self.open_store_with(Commits::Grouped).await
    }

    /// [`State::open_store`], a SQLite file committing as `commits` says.
    pub async fn open_store_with(&self, commits: Commits) -> Result<Opened, ExitCode> {
        if let Some(url) = self.postgres_url() {
            return match bulkhead::PostgresStore::connect(url).await {
                // Copies live in the database, cached beside this host's compile cache.
                Ok(s) => {
                    let copies = self.cache_dir.with_file_name("plugin-copies");
                    Ok(Opened {
                        store: Arc::new(s.clone()),
                        vault: Some(Arc::new(vault::DatabaseVault::new(s, copies.clone()))),
                        copies: Some(copies),
                    })
                }
                Err(e) => {
                    eprintln!("error: {e}\n  help: check the URL (postgres://USER@HOST:PORT/DATABASE), that the server answers and that the database exists (`createdb NAME`)");
                    Err(ExitCode::FAILURE)
                }
            };
        }
        if self.in_memory() {
            return match SqliteStore::open_in_memory() {
                Ok(s) => Ok(Opened {
                    store: Arc::new(s),
                    vault: None,
                    copies: None,
                }),
                Err(e) => {
                    eprintln!("error: {e}");
                    Err(ExitCode::FAILURE)
                }
            };
        }
        if self.store == Path::new(DEFAULT_STORE) {
            if let Some(dir) = self.store.parent() {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    eprintln!(
                        "error: cannot create the state folder {}: {e}",
                        dir.display()
                    );
                    return Err(ExitCode::FAILURE);
                }
            }
        }
        match SqliteStore::open_with(&self.store, commits) {
            Ok(s) => {
                let copies = copies_of(&self.store);
                adopt_legacy_copies(&self.store, &copies);
                Ok(Opened {
                    store: Arc::new(s),
                    vault: Some(Arc::new(bulkhead::FolderVault::new(&copies))),
                    copies: Some(copies),
                })
            }
            Err(e) => {
                eprintln!("error: {e}\n  help: pass `--store PATH` or set BULKHEAD_STORE to use another file");
                Err(ExitCode::FAILURE)
            }
        }
    }

    /// `--store postgres://...`: the PostgreSQL database, if that is what the store names.
    pub fn postgres_url(&self) -> Option<&str> {
        self.store
            .to_str()
            .filter(|s| bulkhead::store_postgres::is_url(s))
    }

    /// The host's own paths that no mount may reach.
    fn guarded(&self, plugins: &Path, copies: Option<&Path>) -> Vec<Guarded> {
        let mut g = vec![
            Guarded::tree(&self.cache_dir, "the compiled-plugin cache"),
            Guarded::path(
                self.cache_dir.with_extension("key"),
                "the compiled-plugin cache key",
            ),
            Guarded::tree(plugins, "the plugin folder"),
        ];
        if !self.in_memory() && self.postgres_url().is_none() {
            g.push(Guarded::path(&self.store, "the state store"));
        }
        if let Some(c) = copies {
            g.push(Guarded::tree(c, "the folder of plugin copies"));
        }
        g
    }

    /// Whether the store is `:memory:`: nothing kept past this process.
    pub fn in_memory(&self) -> bool {
        self.store.as_os_str() == ":memory:"
    }

    /// A host on `plugins` with the store and cache; a SQLite file commits as `commits` says
    /// (in place for a process that drives one run at a time, grouped for a server).
    pub async fn host(
        &self,
        plugins: &Path,
        max_parallel: usize,
        commits: Commits,
    ) -> Result<Host, ExitCode> {
        let opened = self.open_store_with(commits).await?;
        self.host_with(plugins, max_parallel, Some(opened))
    }

    /// A host for a run that is recorded nowhere: with `--store :memory:`, the only reader of
    /// the database would be this process, which has the run's outputs and logs at hand
    /// already. The executor keeps them and the report is built from them; no row is written,
    /// so a run in memory costs no SQL (a third of a 10,000-task process; docs/performance.md).
    pub fn unrecorded_host(&self, plugins: &Path, max_parallel: usize) -> Result<Host, ExitCode> {
        self.host_with(plugins, max_parallel, None)
    }

    fn host_with(
        &self,
        plugins: &Path,
        max_parallel: usize,
        opened: Option<Opened>,
    ) -> Result<Host, ExitCode> {
        let (store, vault, copies) = match opened {
            Some(o) => (Some(o.store), o.vault, o.copies),
            None => (None, None, None),
        };
        Host::new(HostConfig {
            plugins_dir: plugins.to_path_buf(),
            cache_dir: Some(self.cache_dir.clone()),
            max_parallel,
            store,
            guarded: self.guarded(plugins, copies.as_deref()),
            plugin_vault: vault,
            compile: self.compile.clone(),
            compiler: compiler(),
        })
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        })
    }

    /// A host that only loads plugins (no store, few slots).
    pub fn loader(&self, plugins: &Path) -> Result<Host, ExitCode> {
        Host::new(HostConfig {
            plugins_dir: plugins.to_path_buf(),
            cache_dir: Some(self.cache_dir.clone()),
            max_parallel: 1,
            store: None,
            plugin_vault: None,
            guarded: self.guarded(plugins, None),
            compile: self.compile.clone(),
            compiler: compiler(),
        })
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        })
    }
}

/// The folder of plugin copies of the store at `store`: `<store>-plugins`, beside it and named
/// after it (as SQLite names its `-wal` file), so that it is never a folder of the user's.
pub fn copies_of(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-plugins");
    PathBuf::from(name)
}

/// Earlier versions kept plugin copies in `plugins/` beside the store, which could be the
/// user's own plugin folder. Once, when the new folder does not exist yet, the files there that
/// are copies (named by the SHA-256 of their bytes, which is checked) are copied over; nothing
/// in the old folder is changed or deleted.
fn adopt_legacy_copies(store: &Path, copies: &Path) {
    use sha2::{Digest, Sha256};
    let legacy = store.parent().unwrap_or(Path::new(".")).join("plugins");
    if copies.exists() || !legacy.is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&legacy) else {
        return;
    };
    let mut adopted = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wasm"))
        else {
            continue;
        };
        if stem.len() != 64 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if hex::encode(Sha256::digest(&bytes)) != stem {
            continue;
        }
        let target = copies.join(format!("{stem}.wasm"));
        if std::fs::create_dir_all(copies).is_ok() && std::fs::write(&target, &bytes).is_ok() {
            adopted += 1;
        }
    }
    if adopted > 0 {
        tracing::info!(from = %legacy.display(), to = %copies.display(), adopted, "plugin copies now live beside the store; adopted those of the old folder (it is left as it was)");
    }
}

/// Plugins are compiled by a child process of this very binary (`bulkhead __compile`), under
/// the compile bounds; if the binary cannot be found, in-process (size checks only), said once.
pub fn compiler() -> Compiler {
    match std::env::current_exe() {
        Ok(exe) => Compiler::Child(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find this executable; plugins are compiled in-process, without the time and memory bounds");
            Compiler::InProcess
        }
    }
}

/// Runs a future on a multi-threaded runtime.
pub fn block_on<F: std::future::Future<Output = ExitCode>>(f: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Threads for blocking calls (the store, plugins' file calls): a plugin whose file call
        // never returns holds one until it does (docs/limits.md), never more than these.
        .max_blocking_threads(512)
        .build()
    {
        Ok(rt) => {
            let code = rt.block_on(f);
            // A plugin's blocking file call (opening a named pipe in a mount, say) can outlive
            // its attempt on a thread that cannot be interrupted; the attempt has ended as a
            // timeout, and the process must not wait for that thread to exit.
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            code
        }
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// [`block_on`], with the future as a task on the runtime's worker threads rather than on this
/// thread: what it spawns (a run's attempts) goes to its worker's own queue, and a task it waits
/// for wakes it without waking another thread (each such wake-up is a futex call and, on a VM,
/// an interrupt to another core). A 100,000-task run in memory used a quarter less CPU
/// (docs/performance.md).
pub fn block_on_worker<F>(f: F) -> ExitCode
where
    F: std::future::Future<Output = ExitCode> + Send + 'static,
{
    block_on(async {
        tokio::spawn(f).await.unwrap_or_else(|e| {
            eprintln!("error: the command's task failed: {e}");
            ExitCode::FAILURE
        })
    })
}

/// `bulkhead validate FILE...`
pub fn validate(files: &[PathBuf], plugins: &PluginsArg, state: &State) -> ExitCode {
    let host = match state.loader(&plugins.dir) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let mut bad = 0;
    for file in files {
        match host.load(file) {
            Ok(loaded) => eprintln!(
                "ok: {} (workflow `{}`, {} tasks)",
                file.display(),
                loaded.workflow.name,
                loaded.workflow.tasks.len()
            ),
            Err(e) => {
                bad += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

/// `bulkhead graph FILE`
pub fn graph(file: &Path, format: graph::GraphFormat) -> ExitCode {
    match bulkhead::workflow::load(file) {
        Ok(wf) => {
            print!("{}", graph::render(&wf, format));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// What a plugin imports, in one line: a command's functions counted by module
/// (`wasi_snapshot_preview1 (9 functions)`), a component's interfaces without their versions.
fn import_summary(imports: &[serde_json::Value]) -> String {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for i in imports.iter().filter_map(|i| i.as_str()) {
        let key = match i.split_once("::") {
            Some((module, _)) => module.to_string(),
            None => i.split('@').next().unwrap_or(i).to_string(),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    if groups.is_empty() {
        return "nothing".into();
    }
    groups
        .iter()
        .map(|(k, n)| {
            if imports
                .iter()
                .any(|i| i.as_str().is_some_and(|i| i.contains("::")))
            {
                format!("{k} ({n} function{})", if *n == 1 { "" } else { "s" })
            } else {
                k.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `bulkhead plugins`
pub fn plugins(plugins: &PluginsArg, state: &State, json: bool) -> ExitCode {
    let host = match state.loader(&plugins.dir) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let files = match host.registry().list() {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: cannot read the plugin folder {}: {e}\n  help: pass `--plugins DIR` or set BULKHEAD_PLUGINS",
                plugins.dir.display()
            );
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let rows: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let size = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
            match host.registry().load(host.sandbox(), f) {
                Ok(p) => serde_json::json!({
                    "name": p.name, "size": p.size, "hash": p.hash, "loads": true,
                    "abi": match p.abi() {
                        Abi::V1 => "v1 (wasi preview 1 command)",
                        Abi::V2 => "v2 (component)",
                    },
                    "imports": p.imports, "error": null,
                    "cached": p.from_cache, "load_ms": p.load_time.as_secs_f64() * 1000.0,
                }),
                Err(e) => serde_json::json!({
                    "name": f.name, "size": size, "hash": null, "loads": false,
                    "abi": null, "imports": null, "error": e.message, "cached": false,
                }),
            }
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
        return ExitCode::SUCCESS;
    }
    if rows.is_empty() {
        eprintln!("no plugins (*.wasm) in {}", plugins.dir.display());
    }
    println!(
        "{:<20} {:>10}  {:<14} {:<6} ABI / ERROR",
        "NAME", "SIZE", "HASH", "LOADS"
    );
    for r in rows {
        let hash = r["hash"]
            .as_str()
            .map(|h| &h[..12.min(h.len())])
            .unwrap_or("-");
        let detail = r["abi"].as_str().or(r["error"].as_str()).unwrap_or("");
        println!(
            "{:<20} {:>10}  {:<14} {:<6} {}",
            r["name"].as_str().unwrap_or(""),
            r["size"],
            hash,
            if r["loads"] == true { "yes" } else { "no" },
            detail
        );
        if let Some(imports) = r["imports"].as_array() {
            println!("{:<20} imports: {}", "", import_summary(imports));
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::block_on_worker;
    use std::process::ExitCode;

    #[test]
    fn a_command_on_a_worker_runs_off_the_calling_thread_and_its_panic_is_an_exit_code() {
        let caller = std::thread::current().id();
        let code = block_on_worker(async move {
            if std::thread::current().id() == caller {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        });
        assert_eq!(
            code,
            ExitCode::SUCCESS,
            "the future ran on the calling thread"
        );
        let code = block_on_worker(async { panic!("a bug in a command") });
        assert_eq!(code, ExitCode::FAILURE);
    }
}
