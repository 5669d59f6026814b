//! Subcommands other than `run`, and what they share.

pub mod bench;
pub mod progress;
pub mod run;
pub mod summary;

use bulkhead::{Host, HostConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code: the workflow, a plugin or the arguments are invalid; nothing ran.
pub const EXIT_INVALID: u8 = 2;

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

/// A host for commands that only load plugins (few slots).
pub fn host(plugins: &Path, cache_dir: PathBuf, max_parallel: usize) -> Result<Host, ExitCode> {
    Host::new(HostConfig {
        plugins_dir: plugins.to_path_buf(),
        cache_dir: Some(cache_dir),
        max_parallel,
    })
    .map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_INVALID)
    })
}

/// `bulkhead validate FILE...`
pub fn validate(files: &[PathBuf], plugins: &PluginsArg, cache_dir: PathBuf) -> ExitCode {
    let host = match host(&plugins.dir, cache_dir, 1) {
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
pub fn graph(file: &Path, format: bulkhead::plan::GraphFormat) -> ExitCode {
    match bulkhead::workflow::load(file) {
        Ok(wf) => {
            print!("{}", bulkhead::plan::render(&wf, format));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// `bulkhead plugins`
pub fn plugins(plugins: &PluginsArg, cache_dir: PathBuf, json: bool) -> ExitCode {
    let host = match host(&plugins.dir, cache_dir, 1) {
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
                    "abi": "v1 (wasi preview 1 command)", "error": null,
                    "cached": p.from_cache, "load_ms": p.load_time.as_secs_f64() * 1000.0,
                }),
                Err(e) => serde_json::json!({
                    "name": f.name, "size": size, "hash": null, "loads": false,
                    "abi": null, "error": e.message, "cached": false,
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
    }
    ExitCode::SUCCESS
}
