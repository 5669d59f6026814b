//! `bulkhead bench`: per-task overhead, throughput, plugin load times, a Python baseline and the
//! scale curve (whole processes from 1,000 to 100,000 tasks, a million with `--million`), all
//! measured side by side in one run. Figures are medians over repetitions.

use bulkhead::exec::{Event, Observer};
use bulkhead::registry::PluginFile;
use bulkhead::sandbox::compile::CompileBounds;
use bulkhead::sandbox::Sandbox;
use bulkhead::SqliteStore;
use bulkhead::{Host, HostConfig, Loaded};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod fanout;
mod large;
mod scale;
mod serve;
mod targets;

/// Arguments of `bulkhead bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    plugins: super::PluginsArg,
    /// Tasks in the layered throughput DAG.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    tasks: u64,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    repeat: u32,
    /// Attempts at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_parallel: u32,
    /// Skip the Python baseline.
    #[arg(long)]
    no_python: bool,
    /// Print the figures as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Task counts of the scale curve, comma-separated: whole `bulkhead run --json` processes on
    /// layered DAGs, in memory and with a SQLite file (`--scale ''`: no curve).
    #[arg(long, default_value = "1000,10000,100000", value_parser = parse_scale)]
    scale: Scale,
    /// Add a million tasks to the scale curve (about a minute per store on two cores).
    #[arg(long)]
    million: bool,
    /// Runs triggered through `bulkhead serve`'s HTTP API per load (0: no serve load).
    #[arg(long, default_value_t = 2_000)]
    serve_runs: usize,
    /// HTTP clients triggering runs at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    clients: u32,
    /// Finished runs in the history the API is timed over (0: no history).
    #[arg(long, default_value_t = 100_000)]
    history: usize,
    /// A PostgreSQL server (`postgres://USER@HOST:PORT/DB`) to run the serve load on with 1, 2
    /// and 3 hosts, beside SQLite; a database is created for each load and dropped after.
    #[arg(long, env = "BULKHEAD_BENCH_POSTGRES")]
    postgres: Option<String>,
    /// Runs per load of the PostgreSQL comparison.
    #[arg(long, default_value_t = 1_000)]
    cluster_runs: usize,
    /// MiB of JSON one task passes to `--fanout-dependents` tasks (0: no fan-out).
    #[arg(long, default_value_t = 16)]
    fanout_mib: u64,
    /// Dependents of the fan-out's source.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    fanout_dependents: u32,
    /// Attempts of each large no-op component (`py_noop.wasm`, `js_noop.wasm`) timed one by one
    /// (0: none).
    #[arg(long, default_value_t = 200)]
    large_attempts: usize,
}

/// The task counts of the scale curve (`--scale`), each at least one; none for no curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale(Vec<usize>);

/// Parses `--scale`: task counts separated by commas, or nothing at all for no curve.
fn parse_scale(text: &str) -> Result<Scale, String> {
    const MAX: usize = 10_000_000;
    if text.trim().is_empty() {
        return Ok(Scale(Vec::new()));
    }
    text.split(',')
        .map(|part| match part.trim().parse::<usize>() {
            Ok(0) => Err("a step of the scale curve needs at least one task (pass `--scale ''` for no curve)".to_string()),
            Ok(n) if n > MAX => Err(format!(
                "{n} tasks is more than the scale curve takes ({MAX}); `--million` adds a million"
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "`{}` is not a task count: give whole numbers separated by commas, such as `1000,10000` (`--scale ''` for no curve)",
                part.trim()
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Scale)
}

/// Records when each attempt finished.
struct Finishes(Mutex<Vec<Instant>>);

impl Observer for Finishes {
    fn event(&self, event: Event<'_>) {
        if let Event::AttemptFinished { .. } = event {
            if let Ok(mut v) = self.0.lock() {
                v.push(Instant::now());
            }
        }
    }
}

pub(super) struct Quiet;
impl Observer for Quiet {
    fn event(&self, _: Event<'_>) {}
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// YAML of a chain of `n` no-op tasks.
fn chain(n: usize) -> String {
    let mut y = String::from("name: bench_chain\ntasks:\n  t0: {plugin: noop}\n");
    for i in 1..n {
        y.push_str(&format!("  t{i}: {{plugin: noop, needs: [t{}]}}\n", i - 1));
    }
    y
}

/// Layers of `width` tasks; each task needs two tasks of the layer before.
pub(super) fn layered_shape(tasks: usize) -> (usize, usize) {
    let width = 100.min(tasks.max(1));
    (tasks.div_ceil(width), width)
}

pub(super) fn layered(tasks: usize) -> String {
    let (layers, width) = layered_shape(tasks);
    let mut y = String::from("name: bench_layers\ntasks:\n");
    for l in 0..layers {
        for i in 0..width {
            if l == 0 {
                y.push_str(&format!("  t{l}_{i}: {{plugin: noop}}\n"));
            } else {
                let (a, b) = (i, (i + 1) % width);
                y.push_str(&format!(
                    "  t{l}_{i}: {{plugin: noop, needs: [t{}_{a}, t{}_{b}]}}\n",
                    l - 1,
                    l - 1
                ));
            }
        }
    }
    y
}

fn load(host: &Host, dir: &Path, name: &str, yaml: &str) -> Result<Loaded, String> {
    let path = dir.join(format!("{name}.yaml"));
    let wf = bulkhead::workflow::parse(yaml, &path).map_err(|e| e.to_string())?;
    host.prepare(wf, yaml.to_string())
        .map_err(|e| e.to_string())
}

async fn run(host: &Host, loaded: &Loaded, observer: &dyn Observer) -> Result<Duration, String> {
    let started = Instant::now();
    let report = host
        .run(
            loaded,
            bulkhead::new_run_id(),
            json!({}),
            observer,
            Default::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if report.status != bulkhead::report::RunStatus::Succeeded {
        return Err(format!("benchmark run {} did not succeed", report.workflow));
    }
    Ok(took)
}

fn load_times(plugins: &Path, repeat: usize) -> Result<(f64, f64), String> {
    let file = PluginFile {
        name: "noop".into(),
        path: plugins.join("noop.wasm"),
    };
    let bytes = std::fs::read(&file.path).map_err(|e| format!("{}: {e}", file.path.display()))?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let cache = tempfile_dir()?;
        let sandbox = Sandbox::builder()
            .slots(4)
            .cache_dir(&cache)
            .compiler(super::compiler())
            .build()
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        sandbox.load("noop", &bytes).map_err(|e| e.to_string())?;
        cold.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let p = sandbox.load("noop", &bytes).map_err(|e| e.to_string())?;
        warm.push(t.elapsed().as_secs_f64() * 1e3);
        if !p.from_cache {
            return Err("the second load did not come from the cache".into());
        }
        let _ = std::fs::remove_dir_all(&cache);
    }
    Ok((median(cold), median(warm)))
}

/// What the executor adds to an attempt: the difference of two medians, measured apart. Where
/// the attempt timed alone came out slower than the whole (a noisy machine), that says nothing
/// about the executor, and the line says so instead of printing a negative cost.
fn rest_of(whole_p50: f64, attempt_p50: f64) -> String {
    let rest = whole_p50 - attempt_p50;
    if rest < 0.0 {
        format!("executor, journal and bookkeeping within noise (the attempt timed alone was {:.1} us slower than the whole)", -rest)
    } else {
        format!("executor, journal and bookkeeping about {rest:.1} us")
    }
}

pub(super) fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("bulkhead-bench-{}", bulkhead::new_run_id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

pub(super) const PYTHON: &str = r#"
import graphlib, json, sys, time
from concurrent.futures import ThreadPoolExecutor, FIRST_COMPLETED, wait
layers, width, repeat = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def noop():
    return None
graph = {}
for l in range(layers):
    for i in range(width):
        graph[(l, i)] = [] if l == 0 else [(l - 1, i), (l - 1, (i + 1) % width)]
rates = []
for _ in range(repeat):
    ts = graphlib.TopologicalSorter(graph)
    ts.prepare()
    with ThreadPoolExecutor(max_workers=2) as ex:
        start = time.perf_counter()
        pending = {}
        while ts.is_active():
            for node in ts.get_ready():
                pending[ex.submit(noop)] = node
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                ts.done(pending.pop(f))
        rates.append(len(graph) / (time.perf_counter() - start))
rates.sort()
print(json.dumps({"tasks_per_s": rates[len(rates) // 2]}))
"#;

/// The Python interpreter itself, not a wrapper in front of it (pyenv's `python3` is a shell
/// script that costs tens of milliseconds per start): what a timed Python process runs. `None`
/// when `python3` does not run.
pub(super) fn python_interpreter() -> Option<String> {
    std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|exe| !exe.is_empty())
}

fn python_rate(tasks: usize, repeat: usize) -> Result<f64, String> {
    let (layers, width) = layered_shape(tasks);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            PYTHON,
            &layers.to_string(),
            &width.to_string(),
            &repeat.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    v["tasks_per_s"]
        .as_f64()
        .ok_or_else(|| "python printed no rate".into())
}

/// Which build runs the benchmark (and the whole processes of its scale curve, which are this
/// executable): `cargo run` gives a debug build, `cargo run --release` (or an installed
/// `bulkhead`) a release build. Dependencies are optimized in both, so whole processes differ
/// by 5-15% (docs/performance.md).
const BUILD: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// Runs the benchmark.
pub fn main(args: BenchArgs, state: &super::State) -> ExitCode {
    let cache_dir = state.cache_dir.clone();
    // On a worker thread, as `bulkhead run` runs its executor.
    super::block_on_worker(async move {
        match bench(&args, cache_dir).await {
            Ok(figures) => {
                if args.json {
                    println!("{figures:#}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn bench(args: &BenchArgs, cache_dir: PathBuf) -> Result<serde_json::Value, String> {
    let repeat = args.repeat as usize;
    let host = Host::new(HostConfig {
        plugins_dir: args.plugins.dir.clone(),
        cache_dir: Some(cache_dir.clone()),
        max_parallel: args.max_parallel as usize,
        store: None,
        plugin_vault: None,
        guarded: Vec::new(),
        compile: CompileBounds::default(),
        compiler: super::compiler(),
    })
    .map_err(|e| e.to_string())?;
    let state = tempfile_dir()?;
    let sqlite = SqliteStore::open(&state.join("bench.db")).map_err(|e| e.to_string())?;
    let durable = Host::new(HostConfig {
        plugins_dir: args.plugins.dir.clone(),
        cache_dir: Some(cache_dir.clone()),
        max_parallel: args.max_parallel as usize,
        store: Some(Arc::new(sqlite)),
        plugin_vault: Some(Arc::new(bulkhead::FolderVault::new(state.join("plugins")))),
        guarded: Vec::new(),
        compile: CompileBounds::default(),
        compiler: super::compiler(),
    })
    .map_err(|e| e.to_string())?;
    let dir = args.plugins.dir.clone();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bulkhead bench: {} build, {cores} cores, no-op plugin {}, {repeat} repetitions, medians",
        BUILD,
        dir.join("noop.wasm").display()
    );

    // Per-task overhead: in a chain each task becomes ready when the one before finishes, so the
    // gap between consecutive finishes is one task's ready -> done time.
    let long_chain = load(&host, &dir, "chain", &chain(2_000))?;
    run(&host, &long_chain, &Quiet).await?; // warm-up
    let mut gaps = Vec::new();
    for _ in 0..repeat {
        let f = Finishes(Mutex::new(Vec::with_capacity(2_000)));
        run(&host, &long_chain, &f).await?;
        let times = f.0.into_inner().map_err(|_| "poisoned")?;
        gaps.extend(times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1e6));
    }
    gaps.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&gaps, 0.5), percentile(&gaps, 0.99));
    eprintln!(
        "per-task overhead (no-op, ready -> done): p50 {p50:.1} us, p99 {p99:.1} us ({} samples)",
        gaps.len()
    );

    // Where the time goes: the floor (a bare instantiation from the `InstancePre`, pooling
    // allocator) and a whole sandboxed attempt of the no-op plugin (WASI context, pipes, fuel,
    // `_start`, outcome), timed one by one; the executor, journal and bookkeeping are the rest.
    let noop = long_chain.plugins[0].clone();
    let mut floor: Vec<f64> = host
        .sandbox()
        .instantiate_only(&noop, 2_000)
        .await?
        .iter()
        .map(|d| d.as_secs_f64() * 1e6)
        .collect();
    floor.sort_by(f64::total_cmp);
    let (limits, grants) = (
        bulkhead::contract::Limits::default(),
        bulkhead::contract::Grants::default(),
    );
    let mut attempts = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let started = Instant::now();
        let outcome = host
            .sandbox()
            .run(&noop, vec![bytes_of(b"{}")], &limits, &grants)
            .await;
        attempts.push(started.elapsed().as_secs_f64() * 1e6);
        if let Err(f) = outcome.result {
            return Err(format!("the no-op plugin failed: {}", f.message));
        }
    }
    attempts.sort_by(f64::total_cmp);
    let (floor50, attempt50) = (percentile(&floor, 0.5), percentile(&attempts, 0.5));
    eprintln!(
        "  of which: bare instantiation p50 {floor50:.1} us (p99 {:.1}); a whole sandboxed attempt p50 {attempt50:.1} us (p99 {:.1}); {}",
        percentile(&floor, 0.99),
        percentile(&attempts, 0.99),
        rest_of(p50, attempt50)
    );

    let chain40 = load(&host, &dir, "chain40", &chain(40))?;
    let mut c40 = Vec::new();
    for _ in 0..repeat.max(5) * 4 {
        c40.push(run(&host, &chain40, &Quiet).await?.as_secs_f64() * 1e3);
    }
    let chain40_ms = median(c40);
    let chain40 = load(&durable, &dir, "chain40", &chain(40))?;
    let mut c40 = Vec::new();
    for _ in 0..repeat.max(5) * 4 {
        c40.push(run(&durable, &chain40, &Quiet).await?.as_secs_f64() * 1e3);
    }
    let chain40_sqlite_ms = median(c40);
    eprintln!("40-task chain: {chain40_ms:.2} ms in memory, {chain40_sqlite_ms:.2} ms with the SQLite store (every step committed before the next)");

    let layers = load(&host, &dir, "layers", &layered(args.tasks as usize))?;
    let n = layers.workflow.tasks.len();
    run(&host, &layers, &Quiet).await?; // warm-up
    let mut rates = Vec::new();
    for _ in 0..repeat {
        rates.push(n as f64 / run(&host, &layers, &Quiet).await?.as_secs_f64());
    }
    let rate = median(rates);
    let layers = load(&durable, &dir, "layers", &layered(args.tasks as usize))?;
    let mut rates = Vec::new();
    for _ in 0..repeat {
        rates.push(n as f64 / run(&durable, &layers, &Quiet).await?.as_secs_f64());
    }
    let rate_sqlite = median(rates);
    eprintln!("throughput, {n}-task layered DAG: {rate:.0} tasks/s in memory, {rate_sqlite:.0} tasks/s with the SQLite store");
    let _ = std::fs::remove_dir_all(&state);

    let (cold, warm) = load_times(&dir, repeat)?;
    eprintln!("plugin load: cold (compile) {cold:.1} ms, warm (cache) {warm:.3} ms");

    let python = if args.no_python {
        None
    } else {
        match python_rate(args.tasks as usize, repeat) {
            Ok(r) => {
                eprintln!("python graphlib + ThreadPoolExecutor, same DAG, no sandbox: {r:.0} tasks/s (bulkhead / python = {:.2})", rate / r);
                Some(r)
            }
            Err(e) => {
                eprintln!("python baseline skipped: {e}");
                None
            }
        }
    };
    let mut sizes = args.scale.0.clone();
    if args.million {
        sizes.push(1_000_000);
    }
    let curve = scale::scale_curve(
        &args.plugins.dir,
        &cache_dir,
        &sizes,
        repeat,
        !args.no_python,
    )?;
    let serve = serve::throughput(
        &args.plugins.dir,
        &cache_dir,
        args.serve_runs,
        args.clients as usize,
        repeat.min(3),
    )
    .await?;
    let cluster = serve::cluster(
        &args.plugins.dir,
        &cache_dir,
        args.postgres.as_deref(),
        args.cluster_runs,
        args.clients as usize,
    )
    .await?;
    let history = serve::history(&args.plugins.dir, &cache_dir, args.history).await?;
    let fanout = fanout::fanout(
        &args.plugins.dir,
        &cache_dir,
        args.fanout_mib,
        args.fanout_dependents as usize,
        repeat.min(3),
    )?;
    let large = if args.large_attempts == 0 {
        None
    } else {
        large::large_plugins(&args.plugins.dir, args.large_attempts, super::compiler()).await?
    };
    if let Some(rss) = peak_rss_mib() {
        eprintln!("host peak resident memory over the whole benchmark: {rss:.0} MiB");
    }
    let mut figures = json!({
        "build": BUILD,
        "cores": cores,
        "overhead_us": {"p50": p50, "p99": p99, "samples": gaps.len()},
        "instantiate_us": {"p50": floor50, "p99": percentile(&floor, 0.99)},
        "sandboxed_attempt_us": {"p50": attempt50, "p99": percentile(&attempts, 0.99)},
        "chain40_ms": chain40_ms,
        "chain40_sqlite_ms": chain40_sqlite_ms,
        "throughput_tasks_per_s": rate,
        "throughput_sqlite_tasks_per_s": rate_sqlite,
        "dag_tasks": n,
        "plugin_load_ms": {"cold": cold, "warm": warm},
        "python_tasks_per_s": python,
        "peak_rss_mib": peak_rss_mib(),
        "scale": curve,
        "serve": serve,
        "cluster": cluster,
        "fanout": fanout,
        "history": history,
        "large_plugins": large,
    });
    let verdicts = targets::verdicts(&figures);
    eprintln!("targets (each met, not met, or not measured by this run):");
    for v in &verdicts {
        eprintln!("{}", v.line());
    }
    figures["targets"] = verdicts.iter().map(targets::Verdict::to_json).collect();
    Ok(figures)
}

/// The process's peak resident set (VmHWM), in MiB, where /proc tells it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(scale::vm_hwm_kib(&status)? / 1024.0)
}

/// An input part for a direct sandbox call.
fn bytes_of(b: &'static [u8]) -> bytes::Bytes {
    bytes::Bytes::from_static(b)
}

#[cfg(test)]
mod tests {
    use super::{parse_scale, rest_of, Scale};

    #[test]
    fn the_scale_curve_takes_task_counts_or_nothing_and_refuses_zero_and_words() {
        assert_eq!(parse_scale("1000,10000"), Ok(Scale(vec![1000, 10_000])));
        assert_eq!(parse_scale(" 5 , 7 "), Ok(Scale(vec![5, 7])));
        assert_eq!(parse_scale(""), Ok(Scale(Vec::new())));
        let zero = parse_scale("1000,0").unwrap_err();
        assert!(zero.contains("at least one task"), "{zero}");
        let word = parse_scale("1000,lots").unwrap_err();
        assert!(word.contains("`lots` is not a task count"), "{word}");
        let empty_step = parse_scale("1000,").unwrap_err();
        assert!(
            empty_step.contains("`` is not a task count"),
            "{empty_step}"
        );
        let huge = parse_scale("10000001").unwrap_err();
        assert!(huge.contains("--million"), "{huge}");
    }

    #[test]
    fn the_executors_share_is_the_difference_of_medians_and_never_negative() {
        assert_eq!(
            rest_of(11.0, 8.5),
            "executor, journal and bookkeeping about 2.5 us"
        );
        let noisy = rest_of(7.8, 8.3);
        assert!(noisy.contains("within noise"), "{noisy}");
        assert!(noisy.contains("0.5 us slower"), "{noisy}");
        assert!(!noisy.contains("-0."), "{noisy}");
    }
}
