//! The executor: runs a workflow's ready tasks on tokio with bounded concurrency, applies the retry
//! policy, skips what depends on a task that failed for good, and builds the run report.
//!
//! It knows nothing about wasmtime: attempts go through the [`Runner`] trait, and outcomes come
//! back as plain [`AttemptOutcome`]s. Which task may run is the planner's call (`plan`).

mod input;
mod observe;

pub use observe::{Event, LogObserver, Observer};

use crate::plan::{Plan, RunState};
use crate::report::{ErrorReport, RunReport, RunStatus, TaskReport, TaskStatus};
use crate::sandbox::{AttemptOutcome, Failure};
use crate::workflow::Workflow;
use indexmap::IndexMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A boxed attempt future.
pub type AttemptFuture = Pin<Box<dyn Future<Output = AttemptOutcome> + Send + 'static>>;

/// Runs one attempt of task `task` (index in file order) with `input` on its stdin.
pub trait Runner: Send + Sync + 'static {
    /// Starts the attempt. The future must own what it needs.
    fn run(&self, task: usize, input: Vec<u8>) -> AttemptFuture;
}

/// One run to execute.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// The run's id.
    pub run_id: String,
    /// `--param` values (`run_params` in the plugin input).
    pub params: serde_json::Value,
    /// The host's bound on attempts at once (`--max-parallel`).
    pub max_parallel: usize,
}

/// What the executor keeps per task while the run goes on.
#[derive(Debug, Default)]
struct Record {
    attempts: u32,
    output: Option<serde_json::Value>,
    error: Option<ErrorReport>,
    duration: Duration,
    fuel_used: u64,
    peak_memory: u64,
    log: Vec<u8>,
}

/// Executes a run to its end (or until `cancel` fires) and returns its report.
pub async fn execute(
    req: RunRequest,
    runner: Arc<dyn Runner>,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> RunReport {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let wf = req.workflow.clone();
    let plan = Plan::of(&wf);
    let mut state = RunState::new(&plan);
    let mut records: Vec<Record> = (0..plan.len()).map(|_| Record::default()).collect();
    let limit = wf
        .concurrency
        .map_or(usize::MAX, |c| c as usize)
        .min(req.max_parallel)
        .max(1);
    let mut running: JoinSet<(usize, u32, AttemptOutcome)> = JoinSet::new();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<usize>();
    let mut waiting_retries = 0usize;
    let mut cancelled = false;
    let ctx = input::Context::new(&wf, &req.run_id, &req.params);
    let plugin_names: Vec<String> = wf.tasks.iter().map(|t| t.plugin.to_string()).collect();

    loop {
        while running.len() < limit {
            let Some(t) = state.start_next() else { break };
            let rec = &mut records[t];
            rec.attempts += 1;
            let attempt = rec.attempts;
            let input = ctx.document(t, attempt, |n| records[n].output.as_ref());
            observer.event(Event::AttemptStarted {
                task: &wf.tasks[t].id,
                plugin: &plugin_names[t],
                attempt,
            });
            let fut = runner.run(t, input);
            running.spawn(async move { (t, attempt, fut.await) });
        }
        if running.is_empty() && waiting_retries == 0 {
            break;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                cancelled = true;
                break;
            }
            Some(t) = retry_rx.recv() => {
                waiting_retries -= 1;
                state.retry(&plan, t);
            }
            Some(joined) = running.join_next() => {
                let (t, attempt, outcome) = match joined {
                    Ok(done) => done,
                    // A panic in the host while running an attempt: should not happen, but it
                    // must not take the run down. We cannot tell which task it was from here,
                    // so fall back to cancelling cleanly.
                    Err(e) => {
                        tracing::error!(error = %e, "an attempt task panicked in the host");
                        cancelled = true;
                        break;
                    }
                };
                let task = &wf.tasks[t];
                let rec = &mut records[t];
                rec.duration += outcome.duration;
                rec.fuel_used += outcome.fuel_used;
                rec.peak_memory = rec.peak_memory.max(outcome.peak_memory);
                match outcome.result {
                    Ok(output) => {
                        rec.output = Some(output);
                        rec.error = None;
                        rec.log = outcome.log;
                        observer.event(Event::AttemptFinished { task: &task.id, plugin: &plugin_names[t], attempt, failure: None, retry_in: None });
                        state.succeed(&plan, t);
                    }
                    Err(failure) => {
                        let retry = task.retry.should_retry(failure.kind, attempt);
                        let delay = retry.then(|| task.retry.delay(attempt, rand::random::<f64>()));
                        observer.event(Event::AttemptFinished { task: &task.id, plugin: &plugin_names[t], attempt, failure: Some(&failure), retry_in: delay });
                        rec.error = Some(error_report(&failure));
                        rec.log = outcome.log;
                        match delay {
                            Some(d) if d.is_zero() => state.retry(&plan, t),
                            Some(d) => {
                                waiting_retries += 1;
                                let tx = retry_tx.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(d).await;
                                    let _ = tx.send(t);
                                });
                            }
                            None => {
                                for s in state.fail(&plan, t) {
                                    let because = format!("`{}` failed", task.id);
                                    observer.event(Event::Skipped { task: &wf.tasks[s].id, because: &because });
                                    records[s].error = Some(ErrorReport {
                                        kind: "skipped".into(),
                                        message: format!("not run: it depends on `{}`, which failed", task.id),
                                        exit_code: None,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    if cancelled {
        // Interrupt what runs: aborting drops each attempt's future, its store and its memory.
        running.abort_all();
        while let Some(joined) = running.join_next().await {
            if let Ok((t, _, outcome)) = joined {
                records[t].duration += outcome.duration;
            }
        }
    }

    let tasks = build_tasks(&wf, &state, records, cancelled);
    let failed = tasks
        .iter()
        .zip(&wf.tasks)
        .any(|((_, r), t)| r.status == TaskStatus::Failed && !t.optional);
    let status = if cancelled {
        RunStatus::Cancelled
    } else if failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    RunReport {
        run_id: req.run_id,
        workflow: wf.name.clone(),
        status,
        tasks,
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        duration_ms: clock.elapsed().as_millis() as u64,
    }
}

fn error_report(f: &Failure) -> ErrorReport {
    ErrorReport {
        kind: f.kind.as_str().to_string(),
        message: f.message.clone(),
        exit_code: f.exit_code,
    }
}

fn build_tasks(
    wf: &Workflow,
    state: &RunState,
    records: Vec<Record>,
    cancelled: bool,
) -> IndexMap<String, TaskReport> {
    use crate::plan::TaskState as S;
    wf.tasks
        .iter()
        .zip(records)
        .enumerate()
        .map(|(i, (task, rec))| {
            let (status, error) = match state.state(i) {
                S::Succeeded => (TaskStatus::Succeeded, None),
                S::Failed => (TaskStatus::Failed, rec.error),
                S::Skipped => (TaskStatus::Skipped, rec.error),
                S::Waiting | S::Ready | S::Running => {
                    debug_assert!(
                        cancelled,
                        "an unfinished task in a run that was not cancelled"
                    );
                    let message = match rec.attempts {
                        0 => "not run: the run was cancelled".to_string(),
                        n => format!("the run was cancelled during or after attempt {n}"),
                    };
                    let kind = "cancelled".to_string();
                    (
                        TaskStatus::Cancelled,
                        Some(ErrorReport {
                            kind,
                            message,
                            exit_code: None,
                        }),
                    )
                }
            };
            let report = TaskReport {
                status,
                attempts: rec.attempts,
                error,
                output: rec.output.unwrap_or(serde_json::Value::Null),
                duration_ms: rec.duration.as_millis() as u64,
                duration_us: rec.duration.as_micros() as u64,
                fuel_used: rec.fuel_used,
                peak_memory: rec.peak_memory,
                plugin: task.plugin.to_string(),
                optional: task.optional,
                log: String::from_utf8_lossy(&rec.log).into_owned(),
            };
            (task.id.clone(), report)
        })
        .collect()
}

#[cfg(test)]
mod tests;
