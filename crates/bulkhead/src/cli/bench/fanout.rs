//! Data between tasks: one task (`plugins/rows.wasm`) outputs 16 MiB of JSON rows to 50
//! dependents, run as a whole `bulkhead run --json` process with a SQLite file and in memory.
//! Reports wall time, peak resident memory and the size of the store, beside the output's own
//! size: the output should cost one copy in memory and one in the store, not one per dependent.

use super::scale::run_process;
use super::tempfile_dir;
use serde_json::json;
use std::path::Path;

/// The fan-out workflow: `source` makes `bytes` of JSON, `dependents` tasks each get it as input.
fn workflow(bytes: u64, dependents: usize) -> String {
    let mut y = format!(
        "name: bench_fanout\ntasks:\n  source: {{plugin: rows, params: {{bytes: {bytes}}}, limits: {{max_output: {}, memory: 512MiB}}}}\n",
        bytes * 2
    );
    for i in 0..dependents {
        y.push_str(&format!("  d{i}: {{plugin: noop, needs: [source]}}\n"));
    }
    y
}

/// Bytes of a SQLite database's file, or of its WAL with `suffix` `-wal`.
fn file_size(db: &Path, suffix: &str) -> u64 {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    std::fs::metadata(name).map_or(0, |m| m.len())
}

/// Runs the fan-out `repeat` times per store; medians of time, the largest peak.
pub(super) fn fanout(
    plugins: &Path,
    cache_dir: &Path,
    mib: u64,
    dependents: usize,
    repeat: usize,
) -> Result<serde_json::Value, String> {
    if mib == 0 {
        return Ok(serde_json::Value::Null);
    }
    if !plugins.join("rows.wasm").is_file() {
        return Err(format!(
            "{} is missing: run `bash scripts/build-plugins.sh`",
            plugins.join("rows.wasm").display()
        ));
    }
    let dir = tempfile_dir()?;
    let result = (|| {
        let file = dir.join("fanout.yaml");
        std::fs::write(&file, workflow(mib << 20, dependents))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let mut out = json!({"output_mib": mib, "dependents": dependents});
        let mut line = format!("fan-out, one task's {mib} MiB JSON output to {dependents} dependents (whole `bulkhead run --json` processes):");
        for way in ["sqlite", "memory"] {
            let (mut secs, mut peak, mut size, mut wal) = (Vec::new(), 0.0_f64, 0u64, 0u64);
            for r in 0..repeat {
                let db = dir.join(format!("fanout-{r}.db"));
                let store = match way {
                    "sqlite" => db.display().to_string(),
                    _ => ":memory:".to_string(),
                };
                let (s, p) = run_process(plugins, cache_dir, &file, &store)?;
                secs.push(s);
                peak = peak.max(p);
                if way == "sqlite" {
                    size = size.max(file_size(&db, ""));
                    wal = wal.max(file_size(&db, "-wal"));
                }
            }
            let took = super::median(secs);
            out[way] = json!({"seconds": took, "peak_rss_mib": peak});
            line.push_str(&format!(" {way} {took:.2} s, peak {peak:.0} MiB;"));
            if way == "sqlite" {
                let mib = |b: u64| b as f64 / f64::from(1 << 20);
                out[way]["store_mib"] = json!(mib(size));
                out[way]["wal_mib"] = json!(mib(wal));
                line.push_str(&format!(
                    " database {:.1} MiB (its WAL {:.1} MiB until a checkpoint);",
                    mib(size),
                    mib(wal)
                ));
            }
        }
        eprintln!("{}", line.trim_end_matches(';'));
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
