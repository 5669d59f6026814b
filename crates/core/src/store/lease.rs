//! Lease rules shared by every backend: who may take a run, and when.

use super::{rfc3339, Owner, RunStatus, StoreError};

/// How long a lease lasts without renewal. The executor renews it well before.
pub const LEASE_TTL_MS: i64 = 60_000;

/// Whether a run in `status` held by `holder` until `until` may be taken by `me` at `now`.
pub fn lease_is_free(
    status: &str,
    holder: Option<&str>,
    until: Option<i64>,
    me: &Owner,
    now: i64,
) -> bool {
    if status == "interrupted" {
        return true;
    }
    match (holder, until) {
        (None, _) => true,
        (Some(h), _) if h == me.0 => true,
        (Some(h), Some(u)) => u <= now || me.is_dead_local(h),
        (Some(h), None) => me.is_dead_local(h),
    }
}

/// Whether `me` may take run `run_id` now: not when the run ended, nor while another live owner
/// holds its lease (the error says which and until when).
pub fn check_acquirable(
    run_id: &str,
    status: &str,
    holder: Option<&str>,
    until: Option<i64>,
    me: &Owner,
    now: i64,
) -> Result<(), StoreError> {
    if RunStatus::parse(status).is_some_and(RunStatus::is_final) {
        return Err(StoreError::Conflict(format!(
            "run `{run_id}` already ended ({status}); nothing to resume (rerun a failed task with `bulkhead retry {run_id} TASK`)"
        )));
    }
    if !lease_is_free(status, holder, until, me, now) {
        return Err(StoreError::Held {
            run_id: run_id.to_string(),
            owner: holder.unwrap_or("?").to_string(),
            until: until.map(rfc3339).unwrap_or_default(),
        });
    }
    Ok(())
}
