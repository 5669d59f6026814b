//! Where the executor records transitions before acting on them.

use crate::store::{Commit, Lease, Store, StoreError, Transition};
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

/// Commits to a [`Store`] under the run's lease.
pub struct StoreJournal {
    store: Arc<dyn Store>,
    run_id: String,
    lease: Lease,
}

impl StoreJournal {
    /// A journal for `run_id`, under `lease` (checked by every commit).
    pub fn new(store: Arc<dyn Store>, run_id: &str, lease: Lease) -> Self {
        StoreJournal {
            store,
            run_id: run_id.to_string(),
            lease,
        }
    }
}

impl Journal for StoreJournal {
    fn commit(&self, batch: Vec<Transition>) -> CommitFuture<'_> {
        Box::pin(self.store.commit(&self.run_id, &self.lease, batch))
    }

    fn is_durable(&self) -> bool {
        true
    }
}
