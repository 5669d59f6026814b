//! Live events: what the executor reports as runs go on (attempts starting and ending, tasks
//! skipped), and runs being triggered and ending, sent to every subscriber (the API's
//! Server-Sent Events, `/api/events`). A subscriber that falls behind is told so and reloads;
//! nothing here ever waits for one.

use bulkhead_core::exec::{Event, Observer};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for a subscriber that is behind; past this it gets a `lagged` event instead.
pub const BACKLOG: usize = 4096;

/// One live event, as the API sends it (JSON in an SSE `data:` line; `kind` is also the SSE
/// event name).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveEvent {
    /// `run_triggered`, `attempt_started`, `attempt_finished`, `task_skipped`,
    /// `run_cancelling` or `run_finished`.
    pub kind: &'static str,
    /// The run.
    pub run_id: String,
    /// Its workflow; absent from the events of a run this host resumed after a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The task, for task events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The attempt number, for attempt events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// `run_finished`: the run's status; `attempt_finished`: `succeeded`, `retrying` or
    /// `failed`; `task_skipped`: `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The failure kind of a failed attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The failure's message, or why a task was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The delay before the next attempt of a failed one that will be retried (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// How long a finished attempt ran (µs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// When it happened (ms since the epoch).
    pub at_ms: i64,
}

impl LiveEvent {
    /// An event of `kind` about `run_id` at `at_ms`, with nothing else said.
    pub fn new(kind: &'static str, run_id: &str, at_ms: i64) -> LiveEvent {
        LiveEvent {
            kind,
            run_id: run_id.to_string(),
            workflow: None,
            task: None,
            attempt: None,
            status: None,
            error_kind: None,
            message: None,
            retry_in_ms: None,
            duration_us: None,
            at_ms,
        }
    }
}

/// The sending end: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Live {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Live {
    /// Sends `event` to every subscriber (none: it is dropped).
    pub fn send(&self, event: LiveEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// A new subscriber, which sees events sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// Whether anyone listens (events are only built for listeners).
    pub fn listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }
}

/// Turns one run's executor events into live events, then hands them to `inner`. An attempt's
/// start is sent at once (the executor commits it before it starts the attempt); its end and
/// a task's skip are held until the commit that records them, so a client that reads the run
/// when it gets the event sees the change.
pub struct LiveObserver<'a> {
    live: Live,
    run_id: String,
    workflow: Option<String>,
    clock: Arc<dyn bulkhead_core::trigger::Clock>,
    inner: &'a dyn Observer,
    uncommitted: std::sync::Mutex<Vec<LiveEvent>>,
}

impl LiveObserver<'_> {
    fn hold(&self, e: LiveEvent) {
        self.uncommitted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }

    fn flush(&self) {
        let held = std::mem::take(&mut *self.uncommitted.lock().unwrap_or_else(|e| e.into_inner()));
        for e in held {
            self.live.send(e);
        }
    }
}

impl Drop for LiveObserver<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl<'a> LiveObserver<'a> {
    /// Wraps `inner` for the run `run_id` of `workflow` (if known).
    pub fn new(
        live: Live,
        run_id: &str,
        workflow: Option<&str>,
        clock: Arc<dyn bulkhead_core::trigger::Clock>,
        inner: &'a dyn Observer,
    ) -> Self {
        LiveObserver {
            live,
            run_id: run_id.to_string(),
            workflow: workflow.map(str::to_string),
            clock,
            inner,
            uncommitted: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn event(&self, kind: &'static str, task: &str) -> LiveEvent {
        let mut e = LiveEvent::new(kind, &self.run_id, self.clock.now_ms());
        e.workflow = self.workflow.clone();
        e.task = Some(task.to_string());
        e
    }
}

impl Observer for LiveObserver<'_> {
    fn event(&self, event: Event<'_>) {
        if self.live.listened() {
            match event {
                Event::AttemptStarted { task, attempt, .. } => {
                    let mut e = self.event("attempt_started", task);
                    e.attempt = Some(attempt);
                    self.live.send(e);
                }
                Event::AttemptFinished {
                    task,
                    attempt,
                    failure,
                    retry_in,
                    duration,
                    ..
                } => {
                    let mut e = self.event("attempt_finished", task);
                    e.attempt = Some(attempt);
                    e.duration_us = Some(duration.as_micros() as u64);
                    e.status = Some(
                        match (failure, retry_in) {
                            (None, _) => "succeeded",
                            (Some(_), Some(_)) => "retrying",
                            (Some(_), None) => "failed",
                        }
                        .to_string(),
                    );
                    if let Some(f) = failure {
                        e.error_kind = Some(f.kind.to_string());
                        e.message = Some(f.message.clone());
                    }
                    e.retry_in_ms = retry_in.map(|d| d.as_millis() as u64);
                    self.hold(e);
                }
                Event::Skipped { task, because } => {
                    let mut e = self.event("task_skipped", task);
                    e.status = Some("skipped".into());
                    e.message = Some(because.to_string());
                    self.hold(e);
                }
                Event::Committed { .. } => self.flush(),
            }
        }
        self.inner.event(event);
    }
}
