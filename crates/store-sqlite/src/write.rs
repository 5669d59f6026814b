//! Applying transitions to the SQLite schema (the write side of a commit).

use bulkhead_core::store::*;
use rusqlite::{params, Connection};

pub(super) fn apply(
    tx: &Connection,
    run_id: &str,
    owner: &str,
    t: &Transition,
) -> rusqlite::Result<()> {
    match t {
        Transition::AttemptStarted { task, attempt, at } => {
            tx.prepare_cached(
                "INSERT INTO attempts (run_id, task, attempt, status, lease_owner, started_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
            )?
            .execute(params![run_id, task, attempt, owner, at])?;
        }
        Transition::AttemptEnded {
            task,
            attempt,
            at,
            end,
            duration_us,
            fuel_used,
            peak_memory,
            log,
            task_state,
        } => {
            let (status, kind, message, code, output) = end.columns();
            let (d, f, p) = (*duration_us as i64, *fuel_used as i64, *peak_memory as i64);
            tx.prepare_cached(
                "UPDATE attempts SET status = ?4, finished_at = ?5, error_kind = ?6, error_message = ?7, exit_code = ?8,
                 duration_us = ?9, fuel_used = ?10, peak_memory = ?11, log = ?12
                 WHERE run_id = ?1 AND task = ?2 AND attempt = ?3",
            )?
            .execute(params![run_id, task, attempt, status.as_str(), at, kind, message, code, d, f, p, log])?;
            let interrupted = i64::from(status == AttemptStatus::Interrupted);
            let state = task_state.map(TaskStatus::as_str);
            tx.prepare_cached(
                "UPDATE tasks SET duration_us = duration_us + ?3, fuel_used = fuel_used + ?4,
                 peak_memory = CASE WHEN peak_memory < ?5 THEN ?5 ELSE peak_memory END,
                 uncounted = uncounted + ?6, status = coalesce(?7, status),
                 output = coalesce(?8, output),
                 error_kind = CASE WHEN ?6 = 1 THEN error_kind ELSE ?9 END,
                 error_message = CASE WHEN ?6 = 1 THEN error_message ELSE ?10 END,
                 exit_code = CASE WHEN ?6 = 1 THEN exit_code ELSE ?11 END,
                 attempts = max(attempts, ?12)
                 WHERE run_id = ?1 AND task = ?2",
            )?
            .execute(params![
                run_id,
                task,
                d,
                f,
                p,
                interrupted,
                state,
                output,
                kind,
                message,
                code,
                attempt
            ])?;
        }
        Transition::TaskDecided {
            task,
            state,
            message,
        } => {
            tx.prepare_cached(
                "UPDATE tasks SET status = ?3, error_kind = ?4, error_message = ?5, exit_code = NULL WHERE run_id = ?1 AND task = ?2",
            )?
            .execute(params![run_id, task, state.as_str(), state.as_str(), message])?;
        }
        Transition::RunEnded { status, at } => {
            let finished = status.is_final().then_some(*at);
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, finished_at = ?3, lease_owner = NULL, lease_expires_at = NULL WHERE run_id = ?1",
            )?
            .execute(params![run_id, status.as_str(), finished])?;
        }
    }
    Ok(())
}
