//! Applying transitions to the schema (the write side of a commit). The statements of a batch
//! are pipelined: sent one after another without waiting for each answer (the server runs them
//! in order), so a batch of a hundred transitions costs about one round trip, not a hundred.

use bulkhead_core::store::*;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

type Param = Box<dyn ToSql + Sync + Send>;

const STARTED: &str =
    "INSERT INTO attempts (run_id, task, attempt, status, lease_owner, started_at)
     VALUES ($1, $2, $3, 'running', $4, bulkhead_ts($5))";
const ENDED: &str = "UPDATE attempts SET status = $4, finished_at = bulkhead_ts($5), error_kind = $6, error_message = $7,
     exit_code = $8, duration_us = $9, fuel_used = $10, peak_memory = $11, log = $12
     WHERE run_id = $1 AND task = $2 AND attempt = $3";
const ENDED_TASK: &str = "UPDATE tasks SET duration_us = duration_us + $3, fuel_used = fuel_used + $4,
     peak_memory = greatest(peak_memory, $5), uncounted = uncounted + $6, status = coalesce($7, status),
     output = coalesce($8::text::json, output),
     error_kind = CASE WHEN $6 = 1 THEN error_kind ELSE $9 END,
     error_message = CASE WHEN $6 = 1 THEN error_message ELSE $10 END,
     exit_code = CASE WHEN $6 = 1 THEN exit_code ELSE $11 END, attempts = greatest(attempts, $12)
     WHERE run_id = $1 AND task = $2";
const DECIDED: &str =
    "UPDATE tasks SET status = $3, error_kind = $4, error_message = $5, exit_code = NULL
     WHERE run_id = $1 AND task = $2";
const RUN_ENDED: &str = "UPDATE runs SET status = $2, finished_at = bulkhead_ts($3), lease_owner = NULL, lease_expires_at = NULL
     WHERE run_id = $1";

const STATEMENTS: [&str; 5] = [STARTED, ENDED, ENDED_TASK, DECIDED, RUN_ENDED];

fn p<T: ToSql + Sync + Send + 'static>(v: T) -> Param {
    Box::new(v)
}

fn attempt_no(a: u32) -> i32 {
    i32::try_from(a).unwrap_or(i32::MAX)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The statements (index into [`STATEMENTS`]) and parameters that record `t`.
fn statements(run_id: &str, owner: &str, t: &Transition, out: &mut Vec<(usize, Vec<Param>)>) {
    let run = || p(run_id.to_string());
    match t {
        Transition::AttemptStarted {
            task, attempt, at, ..
        } => {
            let a = attempt_no(*attempt);
            out.push((
                0,
                vec![run(), p(task.clone()), p(a), p(owner.to_string()), p(*at)],
            ));
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
            ..
        } => {
            let (status, kind, message, code, output) = end.columns();
            let (kind, message, output) = (
                kind.map(str::to_string),
                message.map(|m| m.as_bytes().to_vec()),
                output.map(str::to_string),
            );
            let (d, f, m) = (
                i64_of(*duration_us),
                i64_of(*fuel_used),
                i64_of(*peak_memory),
            );
            let a = attempt_no(*attempt);
            out.push((
                1,
                vec![
                    run(),
                    p(task.clone()),
                    p(a),
                    p(status.as_str()),
                    p(*at),
                    p(kind.clone()),
                    p(message.clone()),
                    p(code),
                    p(d),
                    p(f),
                    p(m),
                    p(log.as_bytes().to_vec()),
                ],
            ));
            let interrupted = i32::from(status == AttemptStatus::Interrupted);
            out.push((
                2,
                vec![
                    run(),
                    p(task.clone()),
                    p(d),
                    p(f),
                    p(m),
                    p(interrupted),
                    p(task_state.map(TaskStatus::as_str)),
                    p(output),
                    p(kind),
                    p(message),
                    p(code),
                    p(a),
                ],
            ));
        }
        Transition::TaskDecided {
            task,
            state,
            message,
            ..
        } => out.push((
            3,
            vec![
                run(),
                p(task.clone()),
                p(state.as_str()),
                p(state.as_str()),
                p(message.as_bytes().to_vec()),
            ],
        )),
        Transition::RunEnded { status, at } => {
            let finished = status.is_final().then_some(*at);
            out.push((4, vec![run(), p(status.as_str()), p(finished)]));
        }
    }
}

pub(super) async fn apply(
    tx: &Transaction<'_>,
    run_id: &str,
    owner: &str,
    batch: &[Transition],
) -> Result<(), tokio_postgres::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut stmts = Vec::with_capacity(STATEMENTS.len());
    for sql in STATEMENTS {
        stmts.push(tx.prepare_cached(sql).await?);
    }
    let mut work = Vec::new();
    for t in batch {
        statements(run_id, owner, t, &mut work);
    }
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = work
        .iter()
        .map(|(_, ps)| {
            ps.iter()
                .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                .collect()
        })
        .collect();
    // Polled in order, so sent in order; the server runs them in that order.
    let sends = work
        .iter()
        .zip(&params)
        .map(|((i, _), ps)| tx.execute(&stmts[*i], ps));
    futures_util::future::try_join_all(sends).await?;
    Ok(())
}
