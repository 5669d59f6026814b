//! What the executor reports as a run goes on: progress displays and logs subscribe here.

use crate::contract::Failure;
use std::time::Duration;

/// A moment in a run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// An attempt started.
    AttemptStarted {
        /// Task id.
        task: &'a str,
        /// Plugin name.
        plugin: &'a str,
        /// Attempt number, from 1.
        attempt: u32,
        /// Tasks of this run still ready and waiting for a slot.
        ready: usize,
    },
    /// An attempt ended.
    AttemptFinished {
        /// Task id.
        task: &'a str,
        /// Plugin name.
        plugin: &'a str,
        /// Attempt number, from 1.
        attempt: u32,
        /// Why it failed, if it did.
        failure: Option<&'a Failure>,
        /// When it failed and will be retried: the delay before the next attempt.
        retry_in: Option<Duration>,
        /// How long it ran.
        duration: Duration,
        /// Fuel it used.
        fuel_used: u64,
    },
    /// A task will not run because something it needs failed for good.
    Skipped {
        /// Task id.
        task: &'a str,
        /// Why.
        because: &'a str,
    },
    /// A batch of transitions was sent to the state store: it holds the transitions of every
    /// event before this one that a `Committed` has not covered yet. Commits are pipelined, so
    /// attempts may end (and be reported) while it commits; those go in the next batch.
    Committing,
    /// The batch of the last `Committing` was committed to the state store.
    Committed {
        /// How long the commit took (on disk, fsync included).
        duration: Duration,
    },
}

/// Receives run events. Called on the executor's loop: keep it quick.
pub trait Observer: Send + Sync {
    /// One event.
    fn event(&self, event: Event<'_>);
}

/// Writes events as tracing log lines (`task`, `attempt`, `error.kind` fields).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::AttemptStarted {
                task,
                plugin,
                attempt,
                ..
            } => {
                tracing::debug!(task, attempt, plugin, "attempt started")
            }
            Event::AttemptFinished {
                task,
                plugin,
                attempt,
                failure: None,
                ..
            } => {
                // A large run would log a line per task: successes are debug; failures, retries
                // and skips stay loud (docs/operations.md, "Logs").
                tracing::debug!(task, attempt, plugin, "task succeeded")
            }
            Event::AttemptFinished {
                task,
                plugin,
                attempt,
                failure: Some(f),
                retry_in: Some(d),
                ..
            } => {
                tracing::warn!(task, attempt, plugin, error.kind = %f.kind, retry_in = ?d, "attempt failed, will retry: {}", f.message)
            }
            Event::AttemptFinished {
                task,
                plugin,
                attempt,
                failure: Some(f),
                retry_in: None,
                ..
            } => {
                tracing::error!(task, attempt, plugin, error.kind = %f.kind, "task failed: {}", f.message)
            }
            Event::Skipped { task, because } => tracing::warn!(task, "task skipped: {because}"),
            Event::Committing | Event::Committed { .. } => {}
        }
    }
}
