//! `bulkhead runs`, `show`, `logs`, `cancel`, `gc`: read and tend the run history.

use super::{State, EXIT_INVALID};
use bulkhead::report::RunReport;
use bulkhead::store::{self, CancelOutcome, RunFilter, RunStatus, Store, StoreError};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn fail(e: StoreError) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        StoreError::UnknownRun(_) | StoreError::Conflict(_) => ExitCode::from(EXIT_INVALID),
        _ => ExitCode::FAILURE,
    }
}

fn with_store<F, Fut>(state: &State, f: F) -> ExitCode
where
    F: FnOnce(Arc<dyn Store>, Option<Arc<dyn bulkhead::PluginVault>>) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, StoreError>>,
{
    super::block_on(async move {
        let opened = match state.open_store().await {
            Ok(s) => s,
            Err(code) => return code,
        };
        f(opened.store, opened.vault).await.unwrap_or_else(fail)
    })
}

/// `bulkhead hosts`
pub fn hosts(state: &State, json: bool) -> ExitCode {
    with_store(state, |store, _| async move {
        let now = bulkhead::store::now_ms();
        let hosts = store.hosts(now, bulkhead::store::HOST_ALIVE_MS).await?;
        if json {
            let rows: Vec<serde_json::Value> = hosts
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "owner": h.owner,
                        "started_at": bulkhead::store::rfc3339(h.started_at),
                        "last_seen": bulkhead::store::rfc3339(h.last_seen),
                        "slots": h.slots,
                        "slots_in_use": h.slots_in_use,
                        "runs": h.runs,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
        } else if hosts.is_empty() {
            eprintln!("no host has sent a heartbeat in the last {} s (`bulkhead serve` sends one every {} s)", bulkhead::store::HOST_ALIVE_MS / 1000, bulkhead::store::HEARTBEAT_MS / 1000);
        } else {
            println!(
                "{:<40} {:>6} {:>7} {:>5}  {:<25} LAST SEEN",
                "HOST", "SLOTS", "IN USE", "RUNS", "STARTED"
            );
            for h in hosts {
                println!(
                    "{:<40} {:>6} {:>7} {:>5}  {:<25} {}",
                    h.owner,
                    h.slots,
                    h.slots_in_use,
                    h.runs,
                    bulkhead::store::rfc3339(h.started_at),
                    bulkhead::store::rfc3339(h.last_seen)
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `bulkhead runs`
pub fn runs(
    state: &State,
    workflow: Option<String>,
    status: Option<String>,
    limit: usize,
    json: bool,
) -> ExitCode {
    let status = match status.as_deref().map(|s| (s, RunStatus::parse(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => {
            eprintln!("error: unknown status `{s}`; use pending, running, interrupted, succeeded, failed or cancelled");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    with_store(state, |store, _| async move {
        let runs = store
            .list(&RunFilter {
                workflow,
                status,
                limit,
                before: None,
            })
            .await?;
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&runs).unwrap_or_default()
            );
        } else {
            println!(
                "{:<38} {:<20} {:<12} {:<25} FINISHED",
                "RUN", "WORKFLOW", "STATUS", "STARTED (OR DUE)"
            );
            for r in runs {
                let started = match (r.started_at, r.due_at) {
                    (Some(s), _) => s,
                    (None, Some(due)) => format!("due {due}"),
                    (None, None) => "-".into(),
                };
                println!(
                    "{:<38} {:<20} {:<12} {:<25} {}",
                    r.run_id,
                    r.workflow,
                    r.status.as_str(),
                    started,
                    r.finished_at.unwrap_or_else(|| "-".into())
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `bulkhead show RUN_ID`
pub fn show(state: &State, run_id: String, json: bool) -> ExitCode {
    with_store(state, |store, _| async move {
        let report = match store.load(&run_id).await {
            Ok(run) => {
                let mut report = RunReport::from_stored(&run);
                report.due_at = store
                    .trigger_of_run(&run_id)
                    .await?
                    .map(|t| store::rfc3339(t.due_at));
                report
            }
            Err(StoreError::UnknownRun(id)) => match store.trigger_of_run(&id).await? {
                Some(t) if t.stands_for_a_run(store::now_ms()) => {
                    let report = RunReport::not_started(&t);
                    if !json {
                        let due = report.due_at.clone().unwrap_or_default();
                        let error = t.error.map(|e| format!(": {e}")).unwrap_or_default();
                        println!(
                            "run {id} of `{}`: {}{error} (due {due})",
                            t.workflow,
                            report.status.as_str()
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    report
                }
                _ => return Err(StoreError::UnknownRun(id)),
            },
            Err(e) => return Err(e),
        };
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprint!("{}", super::summary::render(&report));
        println!("\nattempts:");
        println!(
            "  {:<24} {:>3}  {:<11}  {:>10}  {:>14}  {:>10}  ERROR",
            "TASK", "#", "STATUS", "DURATION", "FUEL", "PEAK MEM"
        );
        for (id, t) in &report.tasks {
            for a in &t.history {
                let error = a
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.kind, e.message))
                    .unwrap_or_default();
                println!(
                    "  {:<24} {:>3}  {:<11}  {:>7.1} ms  {:>14}  {:>7} KiB  {}",
                    id,
                    a.attempt,
                    a.status,
                    a.duration_us as f64 / 1000.0,
                    a.fuel_used,
                    a.peak_memory / 1024,
                    bulkhead::text::printable(error.lines().next().unwrap_or(""))
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `bulkhead logs RUN_ID [TASK] [--attempt N]`
pub fn logs(
    state: &State,
    run_id: String,
    task: Option<String>,
    attempt: Option<u32>,
    raw: bool,
) -> ExitCode {
    with_store(state, |store, _| async move {
        let logs = store.logs(&run_id, task.as_deref(), attempt).await?;
        if logs.is_empty() {
            eprintln!("no attempts match");
        }
        for l in logs {
            println!("== {} attempt {} ==", l.task, l.attempt);
            if raw {
                print!("{}", l.log);
            } else {
                print!("{}", bulkhead::text::printable(&l.log));
            }
            if !l.log.is_empty() && !l.log.ends_with('\n') {
                println!();
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `bulkhead cancel RUN_ID`
pub fn cancel(state: &State, run_id: String) -> ExitCode {
    with_store(state, |store, _| async move {
        match store.request_cancel(&run_id, store::now_ms()).await? {
            CancelOutcome::Asked => eprintln!("asked the host running {run_id} to cancel it"),
            CancelOutcome::Cancelled => eprintln!("run {run_id} cancelled"),
            CancelOutcome::AlreadyEnded(status) => {
                eprintln!(
                    "error: run {run_id} already ended ({}); nothing to cancel",
                    status.as_str()
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `bulkhead gc --older-than 30d`
pub fn gc(state: &State, older_than: Duration, cache_max: u64) -> ExitCode {
    let cache_dir = state.cache_dir.clone();
    with_store(state, |store, vault| async move {
        let cut = store::now_ms() - older_than.as_millis() as i64;
        let deleted = store.gc(cut).await?;
        let mut removed = 0;
        if let Some(vault) = vault {
            let keep: std::collections::HashSet<String> =
                store.plugin_hashes_in_use().await?.into_iter().collect();
            removed = vault.prune(&keep).map_err(|reason| StoreError::Other {
                path: vault.location(),
                reason,
            })?;
        }
        let freed = bulkhead::sandbox::prune_cache(&cache_dir, cache_max);
        eprintln!(
            "deleted {} runs and {removed} plugin copies no run needs; freed {} KiB of compiled plugins",
            deleted.len(),
            freed >> 10
        );
        Ok(ExitCode::SUCCESS)
    })
}
