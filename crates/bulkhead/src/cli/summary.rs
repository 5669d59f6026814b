//! The readable end-of-run summary printed on stderr.

use bulkhead::report::{RunReport, TaskStatus};
use std::fmt::Write;

/// One line for the run, then one per task: status, attempts, duration, error.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrun {} of `{}` {} in {} ms: {} succeeded, {} failed, {} skipped{}",
        report.run_id,
        report.workflow,
        report.status.as_str(),
        report.duration_ms,
        report.count(TaskStatus::Succeeded),
        report.count(TaskStatus::Failed),
        report.count(TaskStatus::Skipped),
        match report.count(TaskStatus::Cancelled) {
            0 => String::new(),
            n => format!(", {n} cancelled"),
        }
    );
    // Large runs: list only what did not succeed.
    let brief = report.tasks.len() > 50;
    let width = report
        .tasks
        .keys()
        .map(|k| k.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<9}  {:>8}  {:>9}  ERROR",
        "TASK", "STATUS", "ATTEMPTS", "DURATION"
    );
    for (id, t) in &report.tasks {
        if brief && t.status == TaskStatus::Succeeded {
            continue;
        }
        let error = t
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.kind, e.message))
            .unwrap_or_default();
        let optional = if t.optional && t.status == TaskStatus::Failed {
            " (optional)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {:<9}  {:>8}  {:>6.1} ms  {}{}",
            id,
            t.status.as_str(),
            t.attempts,
            t.duration_us as f64 / 1000.0,
            error.lines().next().unwrap_or(""),
            optional
        );
    }
    if brief {
        let _ = writeln!(
            out,
            "  ({} succeeded tasks not listed)",
            report.count(TaskStatus::Succeeded)
        );
    }
    // Plugin text (error messages) never reaches the terminal raw.
    bulkhead::text::printable(&out).into_owned()
}
