//! Applying transitions to the SQLite schema (the write side of a commit).

use bulkhead_core::store::*;
use rusqlite::{params, CachedStatement, Connection};

const ATTEMPT_STARTED: &str = "INSERT INTO attempts (run_key, position, attempt, status, lease_owner, started_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5)";

const ATTEMPT_ENDED: &str =
    "UPDATE attempts SET status = ?4, finished_at = ?5, error_kind = ?6, error_message = ?7, exit_code = ?8,
     duration_us = ?9, fuel_used = ?10, peak_memory = ?11, log = ?12
     WHERE run_key = ?1 AND position = ?2 AND attempt = ?3";

const TASK_OF_ATTEMPT: &str =
    "UPDATE tasks SET duration_us = duration_us + ?3, fuel_used = fuel_used + ?4,
     peak_memory = CASE WHEN peak_memory < ?5 THEN ?5 ELSE peak_memory END,
     uncounted = uncounted + ?6, status = coalesce(?7, status),
     output = coalesce(?8, output),
     error_kind = CASE WHEN ?6 = 1 THEN error_kind ELSE ?9 END,
     error_message = CASE WHEN ?6 = 1 THEN error_message ELSE ?10 END,
     exit_code = CASE WHEN ?6 = 1 THEN exit_code ELSE ?11 END,
     attempts = max(attempts, ?12)
     WHERE run_key = ?1 AND position = ?2";

const TASK_DECIDED: &str = "UPDATE tasks SET status = ?3, error_kind = ?4, error_message = ?5, exit_code = NULL WHERE run_key = ?1 AND position = ?2";

const RUN_ENDED: &str = "UPDATE runs SET status = ?2, finished_at = ?3, lease_owner = NULL, lease_expires_at = NULL WHERE run_id = ?1";

/// The statements a batch runs, each with its place in [`Batch`].
#[derive(Debug, Clone, Copy)]
enum Sql {
    AttemptStarted,
    AttemptEnded,
    TaskOfAttempt,
    TaskDecided,
    RunEnded,
}

impl Sql {
    const COUNT: usize = 5;

    fn text(self) -> &'static str {
        match self {
            Sql::AttemptStarted => ATTEMPT_STARTED,
            Sql::AttemptEnded => ATTEMPT_ENDED,
            Sql::TaskOfAttempt => TASK_OF_ATTEMPT,
            Sql::TaskDecided => TASK_DECIDED,
            Sql::RunEnded => RUN_ENDED,
        }
    }
}

/// Applies `batch`, in order, to the run `run_id` (filed under `key`), held by `owner`.
pub(super) fn apply(
    conn: &Connection,
    run_id: &str,
    key: i64,
    owner: &str,
    batch: &[Transition],
) -> rusqlite::Result<()> {
    let mut statements = Batch::new(conn);
    for t in batch {
        statements.apply(run_id, key, owner, t)?;
    }
    Ok(())
}

/// The statements of one batch, each taken from the connection's cache once and then reused
/// for every transition of its kind (a cache lookup hashes the whole statement text: it was a
/// quarter of the work of applying a transition).
struct Batch<'c> {
    conn: &'c Connection,
    statements: [Option<CachedStatement<'c>>; Sql::COUNT],
}

impl<'c> Batch<'c> {
    fn new(conn: &'c Connection) -> Self {
        Batch {
            conn,
            statements: Default::default(),
        }
    }

    /// The statement `sql`, from the cache the first time.
    fn statement(&mut self, sql: Sql) -> rusqlite::Result<&mut CachedStatement<'c>> {
        let entry = &mut self.statements[sql as usize];
        let statement = match entry.take() {
            Some(statement) => statement,
            None => self.conn.prepare_cached(sql.text())?,
        };
        Ok(entry.insert(statement))
    }

    /// Applies one transition of the run `run_id` (filed under `key`), held by `owner`.
    fn apply(
        &mut self,
        run_id: &str,
        key: i64,
        owner: &str,
        t: &Transition,
    ) -> rusqlite::Result<()> {
        match t {
            Transition::AttemptStarted {
                position,
                attempt,
                at,
                ..
            } => {
                self.statement(Sql::AttemptStarted)?
                    .execute(params![key, position, attempt, owner, at])?;
            }
            Transition::AttemptEnded {
                position,
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
                let (d, f, p) = (*duration_us as i64, *fuel_used as i64, *peak_memory as i64);
                self.statement(Sql::AttemptEnded)?.execute(params![
                    key,
                    position,
                    attempt,
                    status.as_str(),
                    at,
                    kind,
                    message,
                    code,
                    d,
                    f,
                    p,
                    log
                ])?;
                let interrupted = i64::from(status == AttemptStatus::Interrupted);
                let state = task_state.map(TaskStatus::as_str);
                self.statement(Sql::TaskOfAttempt)?.execute(params![
                    key,
                    position,
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
                position,
                state,
                message,
                ..
            } => {
                self.statement(Sql::TaskDecided)?.execute(params![
                    key,
                    position,
                    state.as_str(),
                    state.as_str(),
                    message
                ])?;
            }
            Transition::RunEnded { status, at } => {
                let finished = status.is_final().then_some(*at);
                self.statement(Sql::RunEnded)?.execute(params![
                    run_id,
                    status.as_str(),
                    finished
                ])?;
            }
        }
        Ok(())
    }
}
