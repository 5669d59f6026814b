//! Prometheus metrics of a serving host (`GET /metrics`, OpenMetrics text). Every Bulkhead
//! metric starts with `bulkhead_`; the process metrics use the standard `process_` names so
//! that existing dashboards and alerts work unchanged.
//!
//! Labels are bounded: `workflow` (one value per workflow file), `status` (run and attempt
//! statuses), `kind` (failure kinds) and `what`. Run ids and task ids are never labels: a
//! label value per run would grow the server's memory and Prometheus' index without bound.

use bulkhead_core::exec::{Event, Observer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `workflow` and `status` labels of a run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The workflow's name.
    pub workflow: String,
    /// How the run ended.
    pub status: String,
}

/// `workflow` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkflowLabel {
    /// The workflow's name.
    pub workflow: String,
}

/// `status` and `kind` labels of an attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// `succeeded` or `failed`.
    pub status: String,
    /// The failure kind, or `none`.
    pub kind: String,
}

/// `what` label: `workflow` or `plugin`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct What {
    /// What kind of definition.
    pub what: String,
}

/// `version` label of `bulkhead_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// All metrics of one host.
pub struct Metrics {
    registry: Registry,
    /// Runs ended, by workflow and status.
    pub runs: Family<RunLabels, Counter>,
    /// Wall-clock time of runs, by workflow.
    pub run_duration: Family<WorkflowLabel, Histogram>,
    /// When a run of each workflow last succeeded (Unix seconds).
    pub last_success: Family<WorkflowLabel, FloatGauge>,
    /// Runs going on now.
    pub running_runs: Gauge,
    /// Attempts ended, by status and failure kind.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Retries scheduled.
    pub retries: Counter,
    /// Attempt durations.
    pub attempt_duration: Histogram,
    /// Task durations: from its first attempt's start to its last attempt's end.
    pub task_duration: Histogram,
    /// Tasks ready and waiting for a slot.
    pub ready: Gauge,
    /// Attempts running now.
    pub running: Gauge,
    /// Triggers recorded and not started yet (due or later).
    pub pending_triggers: Gauge,
    /// Fuel used by all attempts.
    pub fuel: Counter,
    /// State store commit latency.
    pub commit_duration: Histogram,
    /// Plugin compile or cache-load times.
    pub plugin_load: Histogram,
    /// Plugin loads served from the compile cache.
    pub cache_hits: Counter,
    /// Plugin loads that compiled.
    pub cache_misses: Counter,
    /// Delay between a scheduled (cron) time and its run's start.
    pub schedule_lag: Histogram,
    /// Definitions whose last load failed (the previous good version stays active).
    pub load_errors: Family<What, Gauge>,
    /// Triggers recorded (cron fires, API and CLI triggers).
    pub triggers: Counter,
    /// Rescans of the workflow and plugin folders.
    pub reloads: Counter,
    process: ProcessMetrics,
}

/// The standard process metrics, read from `/proc/self` at each scrape.
#[derive(Default)]
struct ProcessMetrics {
    cpu: FloatCounter,
    rss: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: FloatGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn run_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 4.0, 10))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            runs: Family::default(),
            run_duration: Family::new_with_constructor(run_buckets as fn() -> Histogram),
            last_success: Family::default(),
            running_runs: Gauge::default(),
            attempts: Family::default(),
            retries: Counter::default(),
            attempt_duration: Histogram::new(exponential_buckets(0.000_01, 4.0, 12)),
            task_duration: Histogram::new(exponential_buckets(0.000_01, 4.0, 12)),
            ready: Gauge::default(),
            running: Gauge::default(),
            pending_triggers: Gauge::default(),
            fuel: Counter::default(),
            commit_duration: Histogram::new(exponential_buckets(0.000_05, 3.0, 12)),
            plugin_load: Histogram::new(exponential_buckets(0.000_05, 4.0, 10)),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            schedule_lag: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            load_errors: Family::default(),
            triggers: Counter::default(),
            reloads: Counter::default(),
            process: ProcessMetrics::default(),
            registry: Registry::default(),
        };
        let r = registry.sub_registry_with_prefix("bulkhead");
        r.register("runs", "Runs ended, by workflow and status", m.runs.clone());
        r.register(
            "run_duration_seconds",
            "Wall-clock time of runs that ended, by workflow",
            m.run_duration.clone(),
        );
        r.register(
            "last_success_timestamp_seconds",
            "When a run of the workflow last succeeded (Unix time)",
            m.last_success.clone(),
        );
        r.register("running_runs", "Runs going on now", m.running_runs.clone());
        r.register(
            "attempts",
            "Attempts ended, by status and failure kind",
            m.attempts.clone(),
        );
        r.register("retries", "Retries scheduled", m.retries.clone());
        r.register(
            "attempt_duration_seconds",
            "Wall-clock time of attempts",
            m.attempt_duration.clone(),
        );
        r.register(
            "task_duration_seconds",
            "Time from a task's first attempt to its end, retries and backoff included",
            m.task_duration.clone(),
        );
        r.register(
            "ready_tasks",
            "Tasks ready and waiting for a slot",
            m.ready.clone(),
        );
        r.register(
            "running_attempts",
            "Attempts running now",
            m.running.clone(),
        );
        r.register(
            "pending_triggers",
            "Runs triggered (scheduled, delayed or asked for) and not started yet",
            m.pending_triggers.clone(),
        );
        r.register("fuel_used", "Fuel used by all attempts", m.fuel.clone());
        r.register(
            "store_commit_seconds",
            "Time to commit a batch of run transitions to the state store",
            m.commit_duration.clone(),
        );
        r.register(
            "plugin_load_seconds",
            "Time to compile or load a plugin",
            m.plugin_load.clone(),
        );
        r.register(
            "plugin_cache_hits",
            "Plugin loads served from the compile cache",
            m.cache_hits.clone(),
        );
        r.register(
            "plugin_cache_misses",
            "Plugin loads that compiled",
            m.cache_misses.clone(),
        );
        r.register(
            "schedule_lag_seconds",
            "Delay from a cron schedule's time to its run's start",
            m.schedule_lag.clone(),
        );
        r.register(
            "load_errors",
            "Definitions whose last load failed, by what",
            m.load_errors.clone(),
        );
        r.register("triggers", "Triggers recorded", m.triggers.clone());
        r.register(
            "reloads",
            "Rescans of the workflow and plugin folders",
            m.reloads.clone(),
        );
        // Both series exist from the start, at 0, so that alerts see "none" rather than nothing.
        for what in ["workflow", "plugin"] {
            let _ = m.load_errors.get_or_create(&What { what: what.into() });
        }
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        r.register("build_info", "Version of this Bulkhead (always 1)", build);
        let p = &m.process;
        let process = &mut registry;
        process.register(
            "process_cpu_seconds",
            "User and system CPU time spent",
            p.cpu.clone(),
        );
        process.register(
            "process_resident_memory_bytes",
            "Resident memory size",
            p.rss.clone(),
        );
        process.register(
            "process_open_fds",
            "Open file descriptors",
            p.open_fds.clone(),
        );
        process.register(
            "process_max_fds",
            "Limit of open file descriptors",
            p.max_fds.clone(),
        );
        process.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch",
            p.start_time.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text exposition (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Records a plugin load.
    pub fn plugin_loaded(&self, plugin: &bulkhead_sandbox::Plugin) {
        self.plugin_load.observe(plugin.load_time.as_secs_f64());
        if plugin.from_cache {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// Records a run that ended.
    pub fn run_ended(&self, report: &bulkhead_core::report::RunReport) {
        let workflow = report.workflow.clone();
        self.runs
            .get_or_create(&RunLabels {
                workflow: workflow.clone(),
                status: report.status.as_str().into(),
            })
            .inc();
        let label = WorkflowLabel { workflow };
        self.run_duration
            .get_or_create(&label)
            .observe(report.duration_ms as f64 / 1000.0);
        if report.status == bulkhead_core::store::RunStatus::Succeeded {
            self.last_success
                .get_or_create(&label)
                .set(bulkhead_core::store::now_ms() as f64 / 1000.0);
        }
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`to_text_format`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Turns OpenMetrics text into the classic Prometheus text format (0.0.4), for scrapers and
/// tools that do not ask for OpenMetrics: a counter's family takes its sample name (`_total`)
/// in `# HELP` and `# TYPE`, and the OpenMetrics-only `# UNIT` and `# EOF` lines go.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{total} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Whether an `Accept` header asks for OpenMetrics (as a Prometheus server does).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.contains("application/openmetrics-text")
}

impl ProcessMetrics {
    /// Reads `/proc/self` (Linux); elsewhere the values stay 0.
    fn refresh(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command (which may hold spaces) start at field 3.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = 100.0; // USER_HZ, 100 on every Linux this runs on.
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        // utime, stime, starttime, rss: fields 14, 15, 22, 24 (1-based), so 11, 12, 19, 21 here.
        if let (Some(u), Some(s)) = (num(11), num(12)) {
            let total = (u + s) / ticks;
            let seen = self.cpu.get();
            if total > seen {
                self.cpu.inc_by(total - seen);
            }
        }
        if let Some(pages) = num(21) {
            self.rss.set((pages * 4096.0) as i64);
        }
        if let (Some(start), Some(boot)) = (num(19), boot_time()) {
            self.start_time.set(boot + start / ticks);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as i64);
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse::<i64>().ok())
            })
        {
            self.max_fds.set(max);
        }
    }
}

/// The boot time of the machine (Unix seconds), from `/proc/stat`.
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Feeds run events into [`Metrics`], then passes them on. One per run: it counts the run as
/// running while it lives.
pub struct MetricsObserver<'a> {
    metrics: Arc<Metrics>,
    inner: &'a dyn Observer,
    ready: AtomicI64,
    running: AtomicI64,
    first_start: Mutex<HashMap<String, Instant>>,
}

impl<'a> MetricsObserver<'a> {
    /// Wraps `inner`.
    pub fn new(metrics: Arc<Metrics>, inner: &'a dyn Observer) -> Self {
        metrics.running_runs.inc();
        MetricsObserver {
            metrics,
            inner,
            ready: AtomicI64::new(0),
            running: AtomicI64::new(0),
            first_start: Mutex::new(HashMap::new()),
        }
    }
}

impl Observer for MetricsObserver<'_> {
    fn event(&self, event: Event<'_>) {
        let m = &self.metrics;
        match event {
            Event::AttemptStarted { ready, task, .. } => {
                let ready = ready as i64;
                let before = self.ready.swap(ready, Ordering::Relaxed);
                m.ready.inc_by(ready - before);
                m.running.inc();
                self.running.fetch_add(1, Ordering::Relaxed);
                self.first_start
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(task.to_string())
                    .or_insert_with(Instant::now);
            }
            Event::AttemptFinished {
                task,
                failure,
                retry_in,
                duration,
                fuel_used,
                ..
            } => {
                m.running.dec();
                self.running.fetch_sub(1, Ordering::Relaxed);
                let (status, kind) = match failure {
                    None => ("succeeded", "none"),
                    Some(f) => ("failed", f.kind.as_str()),
                };
                m.attempts
                    .get_or_create(&AttemptLabels {
                        status: status.into(),
                        kind: kind.into(),
                    })
                    .inc();
                if retry_in.is_some() {
                    m.retries.inc();
                } else if let Some(started) = self
                    .first_start
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(task)
                {
                    m.task_duration.observe(started.elapsed().as_secs_f64());
                }
                m.attempt_duration.observe(duration.as_secs_f64());
                m.fuel.inc_by(fuel_used);
            }
            Event::Committed { duration } => m.commit_duration.observe(duration.as_secs_f64()),
            Event::Skipped { .. } | Event::Committing => {}
        }
        self.inner.event(event);
    }
}

impl Drop for MetricsObserver<'_> {
    fn drop(&mut self) {
        // A run that ends (or is interrupted) leaves nothing behind in the gauges.
        self.metrics
            .ready
            .dec_by(self.ready.load(Ordering::Relaxed));
        self.metrics
            .running
            .dec_by(self.running.load(Ordering::Relaxed));
        self.metrics.running_runs.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.retries.inc();
        let om = m.render();
        assert!(om.contains("# TYPE bulkhead_retries counter\n"), "{om}");
        assert!(om.ends_with("# EOF\n"));
        let text = to_text_format(&om);
        assert!(
            text.contains("# HELP bulkhead_retries_total Retries scheduled.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE bulkhead_retries_total counter\nbulkhead_retries_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE bulkhead_ready_tasks gauge\n"),
            "gauges keep their names"
        );
        assert!(!text.contains("# EOF"));
    }

    /// The process metrics come from `/proc/self`; where it is missing they would silently stay
    /// 0, so on Linux (the only place they are promised) the test insists on real values.
    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_read_from_proc() {
        let text = to_text_format(&Metrics::new().render());
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
        };
        assert!(value("process_resident_memory_bytes") > 1e6, "{text}");
        assert!(value("process_open_fds") >= 3.0, "{text}");
        assert!(value("process_start_time_seconds") > 1.7e9, "{text}");
    }
}
