//! The speed targets, checked against the figures of the run that measured them: each is met,
//! not met, or not measured by this run (its step was left out, or gave no figure). They live
//! here rather than in timed tests, which a slow machine would fail for nothing.

use serde_json::{json, Value};

/// One target and what this run found.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Verdict {
    /// What is asked, in words.
    pub target: String,
    /// The figure measured, if this run measured it.
    pub value: Option<f64>,
    /// The bound it is held to.
    pub bound: f64,
    /// Whether the figure must stay at or under the bound (or reach it).
    pub at_most: bool,
    /// How the figure is printed.
    pub unit: &'static str,
}

impl Verdict {
    /// `Some(true)` met, `Some(false)` not met, `None` not measured.
    pub fn met(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.at_most {
                v <= self.bound
            } else {
                v >= self.bound
            }
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "target": self.target,
            "value": self.value,
            "bound": self.bound,
            "met": self.met(),
        })
    }

    pub fn line(&self) -> String {
        let verdict = match self.met() {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured by this run",
        };
        let decimals = match self.unit {
            "x" => 2,
            " us" => 1,
            _ => 0,
        };
        match self.value {
            Some(v) => format!("  {}: {v:.decimals$}{}, {verdict}", self.target, self.unit),
            None => format!("  {}: {verdict}", self.target),
        }
    }
}

/// The 1,000,000-task step's peak memory must stay under this (MiB).
const MILLION_PEAK_MIB: f64 = 2048.0;

/// The targets, judged on the benchmark's figures (the JSON `bulkhead bench --json` prints).
pub(super) fn verdicts(figures: &Value) -> Vec<Verdict> {
    let number = |v: &Value| v.as_f64().filter(|x| x.is_finite());
    let row = |tasks: u64| {
        figures["scale"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["tasks"].as_u64() == Some(tasks)))
    };
    let rate = |tasks: u64, way: &str| row(tasks).and_then(|r| number(&r[way]["tasks_per_s"]));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let million_peak = row(1_000_000).and_then(|r| {
        ["memory_first", "memory", "sqlite"]
            .iter()
            .filter_map(|way| number(&r[*way]["peak_rss_mib"]))
            .reduce(f64::max)
    });
    let serve_one = figures["serve"].as_array().and_then(|loads| {
        loads
            .iter()
            .find(|l| l["tasks_per_run"].as_u64() == Some(1))
            .and_then(|l| number(&l["runs_per_s"]))
    });
    let verdict = |target: &str, value, bound, at_most, unit| Verdict {
        target: target.to_string(),
        value,
        bound,
        at_most,
        unit,
    };
    vec![
        verdict(
            "per-task overhead p50, at most 15 us",
            number(&figures["overhead_us"]["p50"]),
            15.0,
            true,
            " us",
        ),
        verdict(
            "per-task overhead p99, at most 100 us",
            number(&figures["overhead_us"]["p99"]),
            100.0,
            true,
            " us",
        ),
        verdict(
            "100,000 tasks in memory, at least 0.75x the rate at 10,000",
            ratio(rate(100_000, "memory"), rate(10_000, "memory")),
            0.75,
            false,
            "x",
        ),
        verdict(
            "100,000 tasks with SQLite, at least 0.75x the rate at 10,000",
            ratio(rate(100_000, "sqlite"), rate(10_000, "sqlite")),
            0.75,
            false,
            "x",
        ),
        verdict(
            "100,000 tasks with SQLite, at least 0.4x the rate in memory",
            ratio(rate(100_000, "sqlite"), rate(100_000, "memory")),
            0.4,
            false,
            "x",
        ),
        verdict(
            "100,000 tasks in memory, at least 2x the Python runner",
            ratio(rate(100_000, "memory"), rate(100_000, "python")),
            2.0,
            false,
            "x",
        ),
        verdict(
            "100,000 tasks with SQLite, at least 1x the Python runner",
            ratio(rate(100_000, "sqlite"), rate(100_000, "python")),
            1.0,
            false,
            "x",
        ),
        verdict(
            "1,000,000 tasks, peak memory under 2 GiB (--million)",
            million_peak,
            MILLION_PEAK_MIB,
            true,
            " MiB",
        ),
        verdict(
            "serve, at least 3,000 runs/s of a 1-task workflow",
            serve_one,
            3000.0,
            false,
            " runs/s",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale_row(tasks: u64, memory: f64, sqlite: f64, python: f64, peak: f64) -> Value {
        json!({
            "tasks": tasks,
            "memory_first": {"tasks_per_s": memory, "peak_rss_mib": peak},
            "memory": {"tasks_per_s": memory, "peak_rss_mib": peak},
            "sqlite": {"tasks_per_s": sqlite, "peak_rss_mib": peak},
            "python": {"tasks_per_s": python, "peak_rss_mib": 79.0},
        })
    }

    fn met(verdicts: &[Verdict]) -> Vec<(String, Option<bool>)> {
        verdicts
            .iter()
            .map(|v| (v.target.clone(), v.met()))
            .collect()
    }

    #[test]
    fn each_target_is_judged_on_its_own_figure() {
        let figures = json!({
            "overhead_us": {"p50": 16.0, "p99": 40.0},
            "scale": [
                scale_row(10_000, 100_000.0, 50_000.0, 40_000.0, 31.0),
                scale_row(100_000, 80_000.0, 60_000.0, 61_000.0, 130.0),
                scale_row(1_000_000, 60_000.0, 50_000.0, 55_000.0, 2100.0),
            ],
            "serve": [
                {"tasks_per_run": 1, "runs_per_s": 3100.0},
                {"tasks_per_run": 10, "runs_per_s": 2000.0},
            ],
        });
        let got = verdicts(&figures);
        let verdict = |name: &str| {
            got.iter()
                .find(|v| v.target.starts_with(name))
                .unwrap_or_else(|| panic!("no target {name}"))
                .clone()
        };
        assert_eq!(
            verdict("per-task overhead p50").met(),
            Some(false),
            "16 > 15"
        );
        assert_eq!(verdict("per-task overhead p99").met(), Some(true));
        let scaling = verdict("100,000 tasks in memory, at least 0.75x");
        assert_eq!(scaling.value, Some(0.8));
        assert_eq!(scaling.met(), Some(true));
        let scaling = verdict("100,000 tasks with SQLite, at least 0.75x");
        assert_eq!((scaling.value, scaling.met()), (Some(1.2), Some(true)));
        assert_eq!(
            verdict("100,000 tasks with SQLite, at least 0.4x").value,
            Some(0.75)
        );
        let memory = verdict("100,000 tasks in memory, at least 2x");
        assert_eq!(memory.met(), Some(false), "80,000 / 61,000 < 2");
        let sqlite = verdict("100,000 tasks with SQLite, at least 1x");
        assert_eq!(sqlite.met(), Some(false), "60,000 / 61,000 < 1");
        let million = verdict("1,000,000 tasks");
        assert_eq!((million.value, million.met()), (Some(2100.0), Some(false)));
        let serve = verdict("serve");
        assert_eq!((serve.value, serve.met()), (Some(3100.0), Some(true)));
        assert_eq!(
            serve.line(),
            "  serve, at least 3,000 runs/s of a 1-task workflow: 3100 runs/s, met"
        );
        assert_eq!(
            sqlite.line(),
            "  100,000 tasks with SQLite, at least 1x the Python runner: 0.98x, NOT MET"
        );
    }

    #[test]
    fn a_step_left_out_or_without_a_figure_is_not_measured_rather_than_judged() {
        // No scale curve, no serve load, and an overhead that gave no samples (NaN is not JSON:
        // the figure is missing).
        let figures = json!({"overhead_us": {"p50": null, "p99": 20.0}, "scale": [], "serve": []});
        let got = met(&verdicts(&figures));
        let judged: Vec<_> = got.iter().filter(|(_, m)| m.is_some()).collect();
        assert_eq!(judged.len(), 1, "{got:?}");
        assert_eq!(judged[0].0, "per-task overhead p99, at most 100 us");
        // No Python runner (--no-python): the ratios to it are not measured; the others are.
        let figures = json!({
            "scale": [
                {"tasks": 10_000, "memory": {"tasks_per_s": 100.0}, "sqlite": {"tasks_per_s": 50.0}},
                {"tasks": 100_000, "memory": {"tasks_per_s": 100.0}, "sqlite": {"tasks_per_s": 50.0}},
            ],
        });
        let got = met(&verdicts(&figures));
        let of = |name: &str| {
            got.iter()
                .find(|(t, _)| t.starts_with(name))
                .map(|(_, m)| *m)
        };
        assert_eq!(of("100,000 tasks in memory, at least 2x"), Some(None));
        assert_eq!(of("100,000 tasks with SQLite, at least 1x"), Some(None));
        assert_eq!(
            of("100,000 tasks in memory, at least 0.75x"),
            Some(Some(true))
        );
        assert_eq!(
            of("100,000 tasks with SQLite, at least 0.4x"),
            Some(Some(true))
        );
        assert_eq!(
            of("100,000 tasks with SQLite, at least 0.75x"),
            Some(Some(true))
        );
        assert_eq!(of("1,000,000 tasks"), Some(None));
    }
}
