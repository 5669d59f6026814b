//! Prometheus metrics of a serving host (`GET /metrics`). Every name starts with `bulkhead_`.

use crate::exec::{Event, Observer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// `status` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    /// The status.
    pub status: String,
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

/// All metrics of one host.
pub struct Metrics {
    registry: Registry,
    /// Runs ended, by status.
    pub runs: Family<Status, Counter>,
    /// Attempts ended, by status and failure kind.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Retries scheduled.
    pub retries: Counter,
    /// Attempt durations.
    pub attempt_duration: Histogram,
    /// Tasks ready and waiting for a slot.
    pub ready: Gauge,
    /// Attempts running now.
    pub running: Gauge,
    /// Fuel used by all attempts.
    pub fuel: Counter,
    /// Plugin compile or cache-load times.
    pub plugin_load: Histogram,
    /// Plugin loads served from the compile cache.
    pub cache_hits: Counter,
    /// Plugin loads that compiled.
    pub cache_misses: Counter,
    /// Delay between a trigger's time and its run's start.
    pub schedule_lag: Histogram,
    /// Definitions whose last load failed (the previous good version stays active).
    pub load_errors: Family<What, Gauge>,
    /// Triggers recorded (cron fires, API and CLI triggers).
    pub triggers: Counter,
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

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bulkhead");
        let m = Metrics {
            runs: Family::default(),
            attempts: Family::default(),
            retries: Counter::default(),
            attempt_duration: Histogram::new(exponential_buckets(0.000_01, 4.0, 12)),
            ready: Gauge::default(),
            running: Gauge::default(),
            fuel: Counter::default(),
            plugin_load: Histogram::new(exponential_buckets(0.000_05, 4.0, 10)),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            schedule_lag: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            load_errors: Family::default(),
            triggers: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("runs", "Runs ended, by status", m.runs.clone());
        registry.register(
            "attempts",
            "Attempts ended, by status and failure kind",
            m.attempts.clone(),
        );
        registry.register("retries", "Retries scheduled", m.retries.clone());
        registry.register(
            "attempt_duration_seconds",
            "Wall-clock time of attempts",
            m.attempt_duration.clone(),
        );
        registry.register(
            "ready_tasks",
            "Tasks ready and waiting for a slot",
            m.ready.clone(),
        );
        registry.register(
            "running_attempts",
            "Attempts running now",
            m.running.clone(),
        );
        registry.register("fuel_used", "Fuel used by all attempts", m.fuel.clone());
        registry.register(
            "plugin_load_seconds",
            "Time to compile or load a plugin",
            m.plugin_load.clone(),
        );
        registry.register(
            "plugin_cache_hits",
            "Plugin loads served from the compile cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "plugin_cache_misses",
            "Plugin loads that compiled",
            m.cache_misses.clone(),
        );
        registry.register(
            "schedule_lag_seconds",
            "Delay from a trigger's due time to its run's start",
            m.schedule_lag.clone(),
        );
        registry.register(
            "load_errors",
            "Definitions whose last load failed, by what",
            m.load_errors.clone(),
        );
        registry.register("triggers", "Triggers recorded", m.triggers.clone());
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Records a plugin load.
    pub fn plugin_loaded(&self, plugin: &crate::sandbox::Plugin) {
        self.plugin_load.observe(plugin.load_time.as_secs_f64());
        if plugin.from_cache {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }
}

/// Feeds run events into [`Metrics`], then passes them on.
pub struct MetricsObserver<'a> {
    metrics: Arc<Metrics>,
    inner: &'a dyn Observer,
    ready: AtomicI64,
    running: AtomicI64,
}

impl<'a> MetricsObserver<'a> {
    /// Wraps `inner`.
    pub fn new(metrics: Arc<Metrics>, inner: &'a dyn Observer) -> Self {
        MetricsObserver {
            metrics,
            inner,
            ready: AtomicI64::new(0),
            running: AtomicI64::new(0),
        }
    }
}

impl Observer for MetricsObserver<'_> {
    fn event(&self, event: Event<'_>) {
        let m = &self.metrics;
        match event {
            Event::AttemptStarted { ready, .. } => {
                let ready = ready as i64;
                let before = self.ready.swap(ready, Ordering::Relaxed);
                m.ready.inc_by(ready - before);
                m.running.inc();
                self.running.fetch_add(1, Ordering::Relaxed);
            }
            Event::AttemptFinished {
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
                }
                m.attempt_duration.observe(duration.as_secs_f64());
                m.fuel.inc_by(fuel_used);
            }
            Event::Skipped { .. } => {}
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
    }
}
