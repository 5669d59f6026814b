//! Lease rules shared by every backend: who may take a run, and when.

use super::{rfc3339, Owner, RunStatus, StoreError};

/// Whether a run in `status` held by `holder` until `until` may be taken by `me` at `now`.
pub(crate) fn lease_is_free(
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

pub(crate) fn check_acquirable(
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
