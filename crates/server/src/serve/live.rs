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
/// when it gets the event sees the change. Commits are pipelined, so events are held in two
/// stages: those of the batch being committed (`sending`, from `Committing` to `Committed`)
/// and those after it, which wait for the next batch.
pub struct LiveObserver<'a> {
    live: Live,
    run_id: String,
    workflow: Option<String>,
    clock: Arc<dyn bulkhead_core::trigger::Clock>,
    inner: &'a dyn Observer,
    held: std::sync::Mutex<Held>,
}

/// Events whose transitions are not committed yet.
#[derive(Default)]
struct Held {
    /// In the batch being committed.
    sending: Vec<LiveEvent>,
    /// Not sent to the store yet: in the next batch.
    later: Vec<LiveEvent>,
}

impl LiveObserver<'_> {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hold(&self, e: LiveEvent) {
        self.held().later.push(e);
    }

    /// A batch was sent: what was held so far is in it.
    fn sending(&self) {
        let mut held = self.held();
        let later = std::mem::take(&mut held.later);
        held.sending.extend(later);
    }

    /// The batch being committed is durable: its events go out.
    fn committed(&self) {
        let sent = std::mem::take(&mut self.held().sending);
        for e in sent {
            self.live.send(e);
        }
    }
}

impl Drop for LiveObserver<'_> {
    /// The run is over: its last commit (outside the executor's loop) recorded the rest.
    fn drop(&mut self) {
        self.sending();
        self.committed();
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
            held: std::sync::Mutex::default(),
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
                Event::Committing => self.sending(),
                Event::Committed { .. } => self.committed(),
            }
        }
        self.inner.event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::exec::LogObserver;
    use std::time::Duration;

    fn finished(task: &str) -> Event<'_> {
        Event::AttemptFinished {
            task,
            plugin: "p",
            attempt: 1,
            failure: None,
            retry_in: None,
            duration: Duration::from_micros(5),
            fuel_used: 1,
        }
    }

    fn committed() -> Event<'static> {
        Event::Committed {
            duration: Duration::from_millis(1),
        }
    }

    fn received(rx: &mut broadcast::Receiver<Arc<LiveEvent>>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(format!("{} {}", e.kind, e.task.as_deref().unwrap_or("")));
        }
        seen
    }

    #[test]
    fn an_end_is_sent_after_the_commit_of_its_own_batch_not_of_the_batch_before() {
        let live = Live::default();
        let mut rx = live.subscribe();
        let observer = LiveObserver::new(
            live,
            "r1",
            Some("w"),
            Arc::new(bulkhead_core::trigger::SystemClock),
            &LogObserver,
        );
        // `a` ends, its batch is sent; `b` ends while that batch commits.
        Observer::event(&observer, finished("a"));
        Observer::event(&observer, Event::Committing);
        Observer::event(&observer, finished("b"));
        Observer::event(
            &observer,
            Event::Skipped {
                task: "c",
                because: "`b` failed",
            },
        );
        assert_eq!(
            received(&mut rx),
            Vec::<String>::new(),
            "nothing is durable yet"
        );
        Observer::event(&observer, committed());
        assert_eq!(
            received(&mut rx),
            vec!["attempt_finished a"],
            "b and c are in the next batch, not in the one just committed"
        );
        Observer::event(&observer, Event::Committing);
        Observer::event(
            &observer,
            Event::AttemptStarted {
                task: "d",
                plugin: "p",
                attempt: 1,
                ready: 0,
            },
        );
        assert_eq!(
            received(&mut rx),
            vec!["attempt_started d"],
            "a start is committed before the attempt runs: sent at once"
        );
        Observer::event(&observer, committed());
        assert_eq!(
            received(&mut rx),
            vec!["attempt_finished b", "task_skipped c"]
        );
        // What is still held when the run is over was recorded by its last commit.
        Observer::event(&observer, finished("e"));
        drop(observer);
        assert_eq!(received(&mut rx), vec!["attempt_finished e"]);
    }
}
