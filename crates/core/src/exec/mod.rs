//! The executor: runs a workflow's ready tasks on tokio with bounded concurrency, applies the retry
//! policy, skips what depends on a task that failed for good, and builds the run report.
//!
//! Write-ahead: every transition (attempt start, attempt end, skip, run end) goes to the
//! [`Journal`] and is committed before the executor acts on it. Transitions that happen together
//! (several completions, the starts they make possible) go in one batch: one commit.
//!
//! It knows nothing about wasmtime: attempts go through the [`Runner`] trait, and outcomes come
//! back as plain [`AttemptOutcome`]s. Which task may run is the planner's call (`plan`).

mod input;
mod journal;
mod observe;

pub use bulkhead_abi::{idempotency_key, ABI_VERSION};
pub use journal::{Created, Journal, NoJournal, StoreJournal};
pub use observe::{Event, LogObserver, Observer};

use crate::contract::{AttemptOutcome, Failure, FailureKind};
use crate::plan::{Plan, RunState, TaskState as Planned};
use crate::report::{ErrorReport, RunReport, RunStatus, TaskParts, TaskReport, TaskStatus};
use crate::store::{self, AttemptEnd, StoreError, Transition};
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

/// An attempt polled on the executor's own task, with the task and attempt it belongs to.
type Inline = Pin<Box<dyn Future<Output = (usize, u32, AttemptOutcome)> + Send>>;

/// Polls the inline attempt; pending while there is none (its branch is disabled then).
async fn poll_inline(inline: &mut Option<Inline>) -> (usize, u32, AttemptOutcome) {
    match inline {
        Some(fut) => fut.as_mut().await,
        None => std::future::pending().await,
    }
}

/// A batch being committed, and the attempts it starts (launched once it is durable).
struct InFlight<'j> {
    commit: journal::CommitFuture<'j>,
    starts: Vec<(usize, u32)>,
    began: Instant,
}

/// Polls the commit in flight; pending while there is none (its branch is disabled then).
async fn poll_commit(c: &mut Option<InFlight<'_>>) -> Result<store::Commit, StoreError> {
    match c {
        Some(f) => f.commit.as_mut().await,
        None => std::future::pending().await,
    }
}

/// An attempt whose runner panics (a bug of the host, never of the plugin: the sandbox turns
/// everything a plugin does into an outcome) ends as a `host` failure of that attempt, so the
/// retry policy decides and the run goes on, instead of the attempt vanishing.
fn contain_panics(mut fut: AttemptFuture) -> impl Future<Output = AttemptOutcome> + Send {
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                std::task::Poll::Ready(AttemptOutcome::failed(Failure::new(
                    FailureKind::Host,
                    format!("the host failed while running this attempt ({why}); this is a bug of Bulkhead, not of the plugin"),
                )))
            }
        }
    })
}

/// Runs one attempt of task `task` (index in file order) with `input` on its stdin.
pub trait Runner: Send + Sync + 'static {
    /// Starts the attempt. The future must own what it needs.
    fn run(&self, task: usize, input: Vec<bytes::Bytes>) -> AttemptFuture;
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
    /// What already happened, when resuming a run (one entry per task).
    pub resumed: Option<Vec<store::StoredTask>>,
}

/// How a run is asked to stop.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Graceful: start nothing new, give running attempts `grace`, then interrupt them. The run
    /// ends `interrupted` and can be resumed.
    pub drain: CancellationToken,
    /// Ends the grace period at once (a second Ctrl-C).
    pub hurry: CancellationToken,
    /// Cancel: interrupt everything now. The run ends `cancelled` and is not resumed.
    pub cancel: CancellationToken,
    /// How long running attempts may go on after `drain`.
    pub grace: Duration,
}

impl Stop {
    /// The stop of one run under this one (a server's): a server stop (`drain`, `hurry`,
    /// `cancel`) reaches the run, but the run's own cancel reaches only the run. Every run a
    /// long-running host starts gets its own, so cancelling one run never touches another.
    pub fn for_run(&self) -> Stop {
        Stop {
            drain: self.drain.child_token(),
            hurry: self.hurry.child_token(),
            cancel: self.cancel.child_token(),
            grace: self.grace,
        }
    }
}

/// What the executor keeps per task while the run goes on.
#[derive(Debug, Default)]
struct Record {
    /// Attempts started in all (numbers the next one).
    attempts: u32,
    /// Attempts that do not count against `max_attempts`.
    uncounted: u32,
    /// Its output's text, shared by the store's commit and every dependent's input document.
    output: Option<crate::contract::OutputJson>,
    error: Option<ErrorReport>,
    /// Time in its attempts, summed in whole microseconds per attempt, exactly as the store sums
    /// them (so the report of a run and the report shown later agree).
    duration_us: u64,
    fuel_used: u64,
    peak_memory: u64,
    log: Vec<u8>,
}

impl Record {
    fn resumed(t: &store::StoredTask) -> Record {
        Record {
            attempts: t.attempts,
            uncounted: t.uncounted,
            output: t.output.clone(),
            error: ErrorReport::from_stored(&t.error),
            duration_us: t.duration_us,
            fuel_used: t.fuel_used,
            peak_memory: t.peak_memory,
            log: Vec::new(),
        }
    }
}

fn resumed_state(t: &store::StoredTask) -> Planned {
    match t.state {
        store::TaskStatus::Succeeded => Planned::Succeeded,
        store::TaskStatus::Failed => Planned::Failed,
        store::TaskStatus::Skipped => Planned::Skipped,
        store::TaskStatus::Pending | store::TaskStatus::Cancelled => Planned::Waiting,
    }
}

/// How often a durable run renews its lease (and learns of a cancel request) when nothing else
/// is committed.
const LEASE_RENEWAL: Duration = Duration::from_secs(1);

struct Exec<'a> {
    wf: &'a Workflow,
    plan: Plan,
    state: RunState,
    records: Vec<Record>,
    batch: Vec<Transition>,
    observer: &'a dyn Observer,
    plugin_names: Vec<String>,
    retry_tx: mpsc::UnboundedSender<usize>,
    waiting_retries: usize,
    /// Commits go to a store: a finished task's log, and its output once no dependent can
    /// still need it, live there and not in memory.
    durable: bool,
    /// Per task, its dependents that have not ended yet (an output is an input until then).
    open_dependents: Vec<u32>,
    /// Per task, whether it is counted in its needs' `open_dependents` (it has not ended).
    counted: Vec<bool>,
}

impl<'a> Exec<'a> {
    /// The state of a run about to be driven: fresh, or restored from the tasks a resumed run
    /// stored (skips that were due when the host stopped are recorded now).
    fn new(
        wf: &'a Workflow,
        resumed: Option<&[store::StoredTask]>,
        observer: &'a dyn Observer,
        retry_tx: mpsc::UnboundedSender<usize>,
        durable: bool,
    ) -> Exec<'a> {
        let plan = wf.plan();
        let (state, records, restored_skips) = match resumed {
            None => (
                RunState::new(&plan),
                (0..plan.len()).map(|_| Record::default()).collect(),
                Vec::new(),
            ),
            Some(tasks) => {
                let finished: Vec<Planned> = tasks.iter().map(resumed_state).collect();
                let (state, skips) = RunState::restore(&plan, &finished);
                (state, tasks.iter().map(Record::resumed).collect(), skips)
            }
        };
        let mut x = Exec {
            wf,
            plan,
            state,
            records,
            batch: Vec::new(),
            observer,
            plugin_names: wf.tasks.iter().map(|t| t.plugin.to_string()).collect(),
            retry_tx,
            waiting_retries: 0,
            durable,
            open_dependents: vec![0; wf.tasks.len()],
            counted: vec![false; wf.tasks.len()],
        };
        // Every task that has not ended (or ends only now, as a skip restored below) keeps the
        // outputs it needs.
        let mut skipped_now = vec![false; wf.tasks.len()];
        for &s in &restored_skips {
            skipped_now[s] = true;
        }
        for (t, skipped_now) in skipped_now.into_iter().enumerate() {
            let ended = matches!(
                x.state.state(t),
                Planned::Succeeded | Planned::Failed | Planned::Skipped
            );
            if !ended || skipped_now {
                x.counted[t] = true;
                for i in 0..x.plan.needs(t).len() {
                    let n = x.plan.needs(t)[i];
                    x.open_dependents[n] += 1;
                }
            }
        }
        for t in 0..wf.tasks.len() {
            x.release_output(t);
        }
        for s in restored_skips {
            // A need failed before the host stopped; record the skip now.
            let need = wf.tasks[s]
                .needs
                .iter()
                .copied()
                .find(|&n| x.state.state(n) != Planned::Succeeded)
                .unwrap_or(s);
            x.skip_dependents_of(need, vec![s]);
        }
        x
    }

    /// Task `t` has ended for good: what it needed may no longer be needed.
    fn ended(&mut self, t: usize) {
        if std::mem::take(&mut self.counted[t]) {
            for i in 0..self.plan.needs(t).len() {
                let n = self.plan.needs(t)[i];
                self.open_dependents[n] -= 1;
                self.release_output(n);
            }
        }
        self.release_output(t);
    }

    /// Drops `t`'s output from memory if it is in the store and nothing still needs it.
    fn release_output(&mut self, t: usize) {
        if self.durable
            && self.open_dependents[t] == 0
            && matches!(
                self.state.state(t),
                Planned::Succeeded | Planned::Failed | Planned::Skipped
            )
        {
            self.records[t].output = None;
        }
    }

    fn skip_dependents_of(&mut self, t: usize, skipped: Vec<usize>) {
        let id = &self.wf.tasks[t].id;
        for s in skipped {
            let because = format!("`{id}` failed");
            self.observer.event(Event::Skipped {
                task: &self.wf.tasks[s].id,
                because: &because,
            });
            let message = format!("not run: it depends on `{id}`, which failed");
            self.batch.push(Transition::TaskDecided {
                task: self.wf.tasks[s].id.clone(),
                position: s as u32,
                state: store::TaskStatus::Skipped,
                message: message.clone(),
            });
            self.records[s].error = Some(ErrorReport {
                kind: "skipped".into(),
                message,
                exit_code: None,
            });
            self.ended(s);
        }
    }

    /// Records a finished attempt and decides what comes next for its task.
    fn finished(&mut self, t: usize, attempt: u32, outcome: AttemptOutcome) {
        let task = &self.wf.tasks[t];
        let rec = &mut self.records[t];
        rec.duration_us += outcome.duration.as_micros() as u64;
        rec.fuel_used += outcome.fuel_used;
        rec.peak_memory = rec.peak_memory.max(outcome.peak_memory);
        let log = String::from_utf8_lossy(&outcome.log).into_owned();
        // A durable run's log is in the store (this commit); only an unrecorded run keeps it
        // for its report.
        rec.log = if self.durable {
            Vec::new()
        } else {
            outcome.log
        };
        let ended = |end, task_state| Transition::AttemptEnded {
            task: task.id.clone(),
            position: t as u32,
            attempt,
            at: store::now_ms(),
            end,
            duration_us: outcome.duration.as_micros() as u64,
            fuel_used: outcome.fuel_used,
            peak_memory: outcome.peak_memory,
            log,
            task_state,
        };
        let plugin = &self.plugin_names[t];
        let (duration, fuel_used) = (outcome.duration, outcome.fuel_used);
        match outcome.result {
            Ok(output) => {
                // One text for the store and every dependent: cloning it copies nothing.
                self.batch.push(ended(
                    AttemptEnd::Succeeded(output.clone()),
                    Some(store::TaskStatus::Succeeded),
                ));
                rec.output = Some(output);
                rec.error = None;
                self.observer.event(Event::AttemptFinished {
                    task: &task.id,
                    plugin,
                    attempt,
                    failure: None,
                    retry_in: None,
                    duration,
                    fuel_used,
                });
                self.state.succeed(&self.plan, t);
                self.ended(t);
            }
            Err(failure) => {
                let counted = rec.attempts.saturating_sub(rec.uncounted);
                let retry = task.retry.should_retry(failure.kind, counted);
                let delay = retry.then(|| task.retry.delay(counted, rand::random::<f64>()));
                self.observer.event(Event::AttemptFinished {
                    task: &task.id,
                    plugin,
                    attempt,
                    failure: Some(&failure),
                    retry_in: delay,
                    duration,
                    fuel_used,
                });
                let end = AttemptEnd::Failed {
                    kind: failure.kind.as_str().to_string(),
                    message: failure.message.clone(),
                    exit_code: failure.exit_code,
                };
                self.batch
                    .push(ended(end, (!retry).then_some(store::TaskStatus::Failed)));
                rec.error = Some(error_report(&failure));
                match delay {
                    Some(d) if d.is_zero() => self.state.retry(&self.plan, t),
                    Some(d) => {
                        self.waiting_retries += 1;
                        let tx = self.retry_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            let _ = tx.send(t);
                        });
                    }
                    None => {
                        let skipped = self.state.fail(&self.plan, t);
                        self.skip_dependents_of(t, skipped);
                        self.ended(t);
                    }
                }
            }
        }
    }
    /// Takes up to `room` ready tasks, highest priority first, and records their attempts'
    /// starts in the batch (committed before any of them runs). Returns `(task, attempt)`.
    fn pick_starts(&mut self, room: usize) -> Vec<(usize, u32)> {
        let mut starts = Vec::new();
        while starts.len() < room {
            let Some(t) = self.state.start_next() else {
                break;
            };
            let rec = &mut self.records[t];
            rec.attempts += 1;
            starts.push((t, rec.attempts));
            self.batch.push(Transition::AttemptStarted {
                task: self.wf.tasks[t].id.clone(),
                position: t as u32,
                attempt: rec.attempts,
                at: store::now_ms(),
            });
        }
        starts
    }

    /// Ends the run's bookkeeping: attempts still in flight are interrupted (they do not count
    /// against the retry budget), unfinished tasks of a cancelled run are cancelled, and the
    /// run's status is decided.
    fn close(
        &mut self,
        in_flight: std::collections::HashSet<(usize, u32)>,
        cancelled: bool,
    ) -> RunStatus {
        let unfinished = !self.state.is_finished();
        for (t, attempt) in in_flight {
            self.batch.push(Transition::AttemptEnded {
                task: self.wf.tasks[t].id.clone(),
                position: t as u32,
                attempt,
                at: store::now_ms(),
                end: AttemptEnd::Interrupted,
                duration_us: 0,
                fuel_used: 0,
                peak_memory: 0,
                log: String::new(),
                task_state: None,
            });
            self.records[t].uncounted += 1;
        }
        if cancelled {
            for (i, task) in self.wf.tasks.iter().enumerate() {
                if matches!(
                    self.state.state(i),
                    Planned::Waiting | Planned::Ready | Planned::Running
                ) {
                    let message = "the run was cancelled".to_string();
                    self.batch.push(Transition::TaskDecided {
                        task: task.id.clone(),
                        position: i as u32,
                        state: store::TaskStatus::Cancelled,
                        message,
                    });
                }
            }
            RunStatus::Cancelled
        } else if unfinished {
            RunStatus::Interrupted
        } else if self
            .wf
            .tasks
            .iter()
            .enumerate()
            .any(|(i, t)| self.state.state(i) == Planned::Failed && !t.optional)
        {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        }
    }
}

/// Records an ended attempt, and every other that has ended already: they go in one commit.
fn settle(
    x: &mut Exec<'_>,
    in_flight: &mut std::collections::HashSet<(usize, u32)>,
    running: &mut JoinSet<(usize, u32, AttemptOutcome)>,
    first: Result<(usize, u32, AttemptOutcome), tokio::task::JoinError>,
) {
    let mut next = Some(first);
    while let Some(joined) = next {
        match joined {
            Ok((t, attempt, outcome)) => {
                in_flight.remove(&(t, attempt));
                x.finished(t, attempt, outcome);
            }
            Err(e) => tracing::error!(error = %e, "an attempt task failed in the host"),
        }
        next = running.try_join_next();
    }
}

/// Executes a run to its end (or until it is stopped) and returns its report. Fails only when the
/// journal cannot commit: then running attempts are interrupted and the run can be resumed from
/// its last committed state.
pub async fn execute(
    req: RunRequest,
    runner: Arc<dyn Runner>,
    journal: &dyn Journal,
    observer: &dyn Observer,
    stop: Stop,
) -> Result<RunReport, StoreError> {
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let wf = req.workflow.clone();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<usize>();
    let mut x = Exec::new(
        &wf,
        req.resumed.as_deref(),
        observer,
        retry_tx,
        journal.is_durable(),
    );
    let limit = wf
        .concurrency
        .map_or(usize::MAX, |c| c as usize)
        .min(req.max_parallel)
        .max(1);
    let mut running: JoinSet<(usize, u32, AttemptOutcome)> = JoinSet::new();
    // An attempt that starts while nothing else of the run is in flight (a chain, the narrow
    // part of a graph) is polled here, on the executor's own task, instead of being spawned: no
    // hand-off to another worker thread and back, which was half of a short task's overhead.
    // Whatever starts beside it is spawned as usual, so wide graphs keep every core busy. A long
    // plugin yields every epoch tick, so the loop still sees stops, retries and lease renewals.
    // A run's first attempts are spawned all the same: runs that start together (a server's
    // load) then spread over the workers at once; measured, inlining those cost `serve` about
    // a tenth of its runs per second.
    let mut inline: Option<Inline> = None;
    let mut warm = false;
    let mut in_flight: std::collections::HashSet<(usize, u32)> = std::collections::HashSet::new();
    let ctx = Arc::new(input::Context::new(
        wf.clone(),
        req.run_id.clone(),
        req.params.clone(),
    ));
    let (mut draining, mut cancelled) = (false, false);
    let mut grace_end = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let mut renew = tokio::time::interval(LEASE_RENEWAL);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await;

    // Commits are pipelined: while one batch is being committed (a SQLite file's fsync, a
    // PostgreSQL round trip), attempts already started run on, and what ends meanwhile gathers
    // in the next batch, sent as soon as the one before is durable. Write-ahead holds: an
    // attempt is launched only once the batch holding its start is committed, and batches are
    // committed one at a time in order, so a need's end is always durable before a dependent's
    // start.
    let mut committing: Option<InFlight<'_>> = None;
    let failure: Option<StoreError> = loop {
        if committing.is_none() {
            // Pick what starts now; record the starts (with whatever ended before) in one
            // commit. Picked starts count as in flight from here: a stop before they launch
            // records them as interrupted.
            let room = limit.saturating_sub(running.len() + usize::from(inline.is_some()));
            let starts = match draining {
                true => Vec::new(),
                false => x.pick_starts(room),
            };
            in_flight.extend(starts.iter().copied());
            if starts.is_empty()
                && running.is_empty()
                && inline.is_none()
                && (x.waiting_retries == 0 || draining)
            {
                // Nothing runs, starts or waits: the run is over. What ended last goes in the
                // run's last commit, beside its end: one write fewer per run (a 1-task run
                // under `serve` commits twice, its start and its end).
                break None;
            }
            if !x.batch.is_empty() {
                if journal.is_durable() {
                    observer.event(Event::Committing);
                }
                committing = Some(InFlight {
                    commit: journal.commit(std::mem::take(&mut x.batch)),
                    starts,
                    began: Instant::now(),
                });
            }
        }
        tokio::select! {
            biased;
            _ = stop.cancel.cancelled(), if !cancelled => {
                cancelled = true;
                break None;
            }
            _ = stop.drain.cancelled(), if !draining => {
                draining = true;
                grace_end = tokio::time::Instant::now() + stop.grace;
            }
            _ = stop.hurry.cancelled(), if draining => break None,
            _ = tokio::time::sleep_until(grace_end), if draining => break None,
            committed = poll_commit(&mut committing), if committing.is_some() => {
                let Some(done) = committing.take() else { continue };
                if journal.is_durable() {
                    observer.event(Event::Committed {
                        duration: done.began.elapsed(),
                    });
                }
                match committed {
                    Ok(c) if c.cancel_requested => stop.cancel.cancel(),
                    Ok(_) => {}
                    Err(e) => break Some(e),
                }
                // Draining: what was recorded as started but has not run is interrupted by
                // `close`, like the attempts still running.
                if draining || stop.cancel.is_cancelled() {
                    continue;
                }
                let alone = done.starts.len() == 1;
                for (t, attempt) in done.starts {
                    // The outputs it needs, shared; the document itself and the attempt's
                    // future are built where the attempt runs, so that the thread that
                    // allocates them frees them too (memory handed from thread to thread made
                    // the allocator's locks a tenth of a large run).
                    let needs: Vec<Option<bytes::Bytes>> = wf.tasks[t]
                        .needs
                        .iter()
                        .map(|&n| x.records[n].output.as_ref().map(|o| o.bytes()))
                        .collect();
                    observer.event(Event::AttemptStarted {
                        task: &wf.tasks[t].id,
                        plugin: &x.plugin_names[t],
                        attempt,
                        ready: x.state.ready_len(),
                    });
                    let (ctx, runner) = (ctx.clone(), runner.clone());
                    let attempt_fut = async move {
                        let run = Box::pin(async move {
                            let input = ctx.document(t, attempt, &needs);
                            runner.run(t, input).await
                        });
                        (t, attempt, contain_panics(run).await)
                    };
                    if running.is_empty() && inline.is_none() && alone && warm {
                        inline = Some(Box::pin(attempt_fut));
                    } else {
                        running.spawn(attempt_fut);
                    }
                }
            }
            // A commit in flight renews the lease itself.
            _ = renew.tick(), if journal.is_durable() && committing.is_none() => {
                match journal.commit(Vec::new()).await {
                    Ok(c) if c.cancel_requested => stop.cancel.cancel(),
                    Ok(_) => {}
                    Err(e) => break Some(e),
                }
            }
            Some(t) = retry_rx.recv(), if x.waiting_retries > 0 => {
                x.waiting_retries -= 1;
                x.state.retry(&x.plan, t);
            }
            done = poll_inline(&mut inline), if inline.is_some() => {
                inline = None;
                warm = true;
                settle(&mut x, &mut in_flight, &mut running, Ok(done));
            }
            Some(joined) = running.join_next() => {
                warm = true;
                settle(&mut x, &mut in_flight, &mut running, joined);
            }
        }
    };
    // A batch still being committed is seen to its end before anything else is written: the
    // run's last commit must follow it.
    let failure = match committing.take() {
        Some(last) => match (failure, last.commit.await) {
            (Some(e), _) | (None, Err(e)) => Some(e),
            (None, Ok(_)) => None,
        },
        None => failure,
    };

    // Interrupt what still runs: aborting drops each attempt's future, its store and its memory.
    drop(inline);
    running.abort_all();
    while running.join_next().await.is_some() {}
    if let Some(e) = failure {
        return Err(e);
    }
    let status = x.close(in_flight, cancelled);
    x.batch.push(Transition::RunEnded {
        status,
        at: store::now_ms(),
    });
    let began = Instant::now();
    if journal.is_durable() {
        observer.event(Event::Committing);
    }
    journal.commit(std::mem::take(&mut x.batch)).await?;
    if journal.is_durable() {
        observer.event(Event::Committed {
            duration: began.elapsed(),
        });
    }

    Ok(RunReport {
        run_id: req.run_id,
        workflow: wf.name.clone(),
        status,
        tasks: build_tasks(&wf, &x.state, x.records, status),
        started_at: Some(humantime::format_rfc3339_millis(started_at).to_string()),
        finished_at: Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
        due_at: None,
        error: None,
        duration_ms: clock.elapsed().as_millis() as u64,
        next_task_after: None,
    })
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
    run: RunStatus,
) -> IndexMap<String, TaskReport> {
    wf.tasks
        .iter()
        .zip(records)
        .enumerate()
        .map(|(i, (task, rec))| {
            let (status, error) = match state.state(i) {
                Planned::Succeeded => (TaskStatus::Succeeded, None),
                Planned::Failed => (TaskStatus::Failed, rec.error),
                Planned::Skipped => (TaskStatus::Skipped, rec.error),
                Planned::Waiting | Planned::Ready | Planned::Running
                    if run == RunStatus::Cancelled =>
                {
                    let message = match rec.attempts {
                        0 => "not run: the run was cancelled".to_string(),
                        n => format!("the run was cancelled during or after attempt {n}"),
                    };
                    (
                        TaskStatus::Cancelled,
                        Some(ErrorReport {
                            kind: "cancelled".into(),
                            message,
                            exit_code: None,
                        }),
                    )
                }
                Planned::Waiting | Planned::Ready | Planned::Running => {
                    (TaskStatus::Pending, rec.error)
                }
            };
            let report = TaskReport::new(
                Some(task),
                TaskParts {
                    status,
                    attempts: rec.attempts,
                    error,
                    output: rec.output,
                    duration_us: rec.duration_us,
                    fuel_used: rec.fuel_used,
                    peak_memory: rec.peak_memory,
                    log: String::from_utf8_lossy(&rec.log).into_owned(),
                    history: Vec::new(),
                },
            );
            (task.id.clone(), report)
        })
        .collect()
}

#[cfg(test)]
mod tests;
