//! Where the executor records transitions before acting on them.

use crate::store::{Commit, Lease, NewRun, Store, StoreError, Transition};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed commit future.
pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<Commit, StoreError>> + Send + 'a>>;

/// Commits batches of transitions of one run.
pub trait Journal: Send + Sync {
    /// Commits `batch` atomically; resolves once it is durable.
    fn commit(&self, batch: Vec<Transition>) -> CommitFuture<'_>;

    /// Whether commits are durable (and the lease must be renewed).
    fn is_durable(&self) -> bool;
}

/// Records nothing: a run that needs no durability (benchmarks of the bare executor, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn commit(&self, _batch: Vec<Transition>) -> CommitFuture<'_> {
        Box::pin(std::future::ready(Ok(Commit::default())))
    }

    fn is_durable(&self) -> bool {
        false
    }
}

/// Commits to a [`Store`] under the run's lease. A journal made by [`StoreJournal::creating`]
/// records its new run with its first commit: the run's record and its first starts are one
/// write ([`Store::create_run_with`]), one fewer than creating it first. Nothing of such a run
/// exists in the store until that commit, and nothing of it runs before: the executor launches
/// an attempt only once its start is committed.
pub struct StoreJournal {
    store: Arc<dyn Store>,
    run_id: String,
    /// Commits come one at a time (the executor waits for each), so this lock is never
    /// contended; it is async only because it is held across the store's answer.
    state: tokio::sync::Mutex<Creation>,
}

/// How far a [`StoreJournal`] got with its run's record.
enum Creation {
    /// Not recorded yet: the first commit records it.
    Pending(Box<NewRun>),
    /// Recorded, held under this lease.
    Created(Lease),
    /// The recording write failed: nothing of the run was stored.
    Failed,
}

/// Whether a [`StoreJournal`]'s run is recorded, once the execution is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The run is recorded, held under this lease.
    Yes(Lease),
    /// No commit was asked for: the run is not recorded.
    NotAsked,
    /// The write that was to record it failed: nothing of it is stored.
    Failed,
}

impl StoreJournal {
    /// A journal for `run_id`, recorded already, under `lease` (checked by every commit).
    pub fn new(store: Arc<dyn Store>, run_id: &str, lease: Lease) -> Self {
        StoreJournal {
            store,
            run_id: run_id.to_string(),
            state: tokio::sync::Mutex::new(Creation::Created(lease)),
        }
    }

    /// A journal that records the new run `run` with its first commit.
    pub fn creating(store: Arc<dyn Store>, run: NewRun) -> Self {
        StoreJournal {
            store,
            run_id: run.run_id.clone(),
            state: tokio::sync::Mutex::new(Creation::Pending(Box::new(run))),
        }
    }

    /// Whether the run is recorded (call it once the execution is over).
    pub async fn created(&self) -> Created {
        match &*self.state.lock().await {
            Creation::Pending(_) => Created::NotAsked,
            Creation::Created(lease) => Created::Yes(lease.clone()),
            Creation::Failed => Created::Failed,
        }
    }
}

impl Journal for StoreJournal {
    fn commit(&self, batch: Vec<Transition>) -> CommitFuture<'_> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            match std::mem::replace(&mut *state, Creation::Failed) {
                Creation::Pending(run) => {
                    // On an error the state stays `Failed`: the run was not stored.
                    let lease = self.store.create_run_with(*run, batch).await?;
                    *state = Creation::Created(lease);
                    // A run that did not exist cannot have been asked to stop.
                    Ok(Commit::default())
                }
                Creation::Created(lease) => {
                    let result = self.store.commit(&self.run_id, &lease, batch).await;
                    *state = Creation::Created(lease);
                    result
                }
                Creation::Failed => Err(StoreError::UnknownRun(self.run_id.clone())),
            }
        })
    }

    fn is_durable(&self) -> bool {
        true
    }
}
