//! The scale curve: whole processes as a user runs them (`bulkhead run FILE --json`, startup,
//! parsing, plugin loading, the run, logging and the report included) on layered DAGs of no-op
//! plugins, in memory and with a SQLite file, beside the same DAG run by a Python process.

use super::{layered, layered_shape, median, tempfile_dir, PYTHON};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A whole `bulkhead run --json` process: wall-clock seconds and its peak resident memory in MiB.
pub(super) fn run_process(
    plugins: &Path,
    cache_dir: &Path,
    file: &Path,
    store: &str,
) -> Result<(f64, f64), String> {
    let mut cmd = Command::new(
        std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?,
    );
    cmd.arg("run")
        .arg(file)
        .arg("--json")
        .arg("--plugins")
        .arg(plugins)
        .arg("--cache-dir")
        .arg(cache_dir)
        .arg("--store")
        .arg(store)
        .env_remove("RUST_LOG");
    measure(
        cmd,
        &format!("bulkhead run {} --store {store}", file.display()),
    )
}

/// Runs `cmd` to its end: wall-clock seconds and peak resident memory in MiB (VmHWM, sampled
/// every 5 ms while it runs: what it reaches in its last 5 ms is missed).
pub(super) fn measure(mut cmd: Command, what: &str) -> Result<(f64, f64), String> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0.0_f64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = vm_hwm_kib(&text) {
                peak_kib = peak_kib.max(kib);
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{what} failed: {status}"));
    }
    Ok((secs, peak_kib / 1024.0))
}

/// The scale curve: for each size, a layered DAG run as whole processes in memory, with a fresh
/// SQLite file and (unless `python` is false) by the Python runner in a process of its own; the
/// median of `repeat` runs (fewer above 10,000 tasks), side by side. The first run of a file
/// validates its YAML and later runs read the validated form from the cache (files of 64 KiB
/// and more), so the first run in memory is also shown on its own (`memory, 1st`). Where a size
/// is run only once (above 100,000 tasks), that first run is also the in-memory figure.
pub(super) fn scale_curve(
    plugins: &Path,
    cache_dir: &Path,
    sizes: &[usize],
    repeat: usize,
    python: bool,
) -> Result<Vec<serde_json::Value>, String> {
    if sizes.is_empty() {
        return Ok(Vec::new());
    }
    let dir = tempfile_dir()?;
    eprintln!("scale, whole processes on layered DAGs of no-op tasks (`bulkhead run FILE --json`; Python: graphlib + 2 threads, no sandbox, no store):");
    eprintln!(
        "  {:>9}  {:>15}  {:>15}  {:>9}  {:>15}  {:>9}  {:>15}  {:>9}  {:>14}",
        "tasks",
        "memory, 1st",
        "memory tasks/s",
        "peak MiB",
        "sqlite tasks/s",
        "peak MiB",
        "python tasks/s",
        "peak MiB",
        "memory/sqlite vs python"
    );
    let mut out = Vec::new();
    let result = (|| {
        for &tasks in sizes {
            let file = dir.join(format!("scale-{tasks}.yaml"));
            std::fs::write(&file, layered(tasks))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let times = match tasks {
                0..=10_000 => repeat,
                10_001..=100_000 => repeat.min(3),
                _ => 1,
            };
            let mut row = json!({"tasks": tasks});
            let mut line = format!("  {tasks:>9}");
            let mut rates = Vec::new();
            let ways: &[&str] = if python {
                &["memory", "sqlite", "python"]
            } else {
                &["memory", "sqlite"]
            };
            for &way in ways {
                let mut secs = Vec::new();
                let mut peak = 0.0_f64;
                if way == "memory" {
                    // A new file: its YAML is validated (and the validated form cached).
                    let (s, p) = run_process(plugins, cache_dir, &file, ":memory:")?;
                    let rate = tasks as f64 / s;
                    line.push_str(&format!("  {rate:>15.0}"));
                    row["memory_first"] = json!({"tasks_per_s": rate, "peak_rss_mib": p});
                    if times == 1 {
                        secs.push(s);
                        peak = p;
                    }
                }
                let repeats = if way == "memory" && times == 1 {
                    0
                } else {
                    times
                };
                for r in 0..repeats {
                    let (s, p) = match way {
                        "memory" => run_process(plugins, cache_dir, &file, ":memory:")?,
                        "sqlite" => {
                            let db = dir.join(format!("scale-{tasks}-{r}.db"));
                            run_process(plugins, cache_dir, &file, &db.display().to_string())?
                        }
                        _ => python_process(tasks)?,
                    };
                    secs.push(s);
                    peak = peak.max(p);
                }
                let runs = secs.len();
                let rate = tasks as f64 / median(secs);
                rates.push(rate);
                line.push_str(&format!("  {rate:>15.0}  {peak:>9.0}"));
                row[way] = json!({"tasks_per_s": rate, "peak_rss_mib": peak, "runs": runs});
            }
            if let [memory, sqlite, python] = rates[..] {
                line.push_str(&format!(
                    "  {:>6.2}x / {:.2}x",
                    memory / python,
                    sqlite / python
                ));
            }
            eprintln!("{line}");
            out.push(row);
        }
        Ok::<(), String>(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    Ok(out)
}

/// The Python runner on the same DAG, one run in a fresh interpreter (started directly, not
/// through a wrapper script such as pyenv's, whose own start-up would be counted as Python's).
fn python_process(tasks: usize) -> Result<(f64, f64), String> {
    let (layers, width) = layered_shape(tasks);
    let python = super::python_interpreter().ok_or("python3 does not run")?;
    let mut cmd = Command::new(python);
    cmd.args(["-c", PYTHON, &layers.to_string(), &width.to_string(), "1"]);
    measure(cmd, "python3")
}

pub(super) fn vm_hwm_kib(status: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
