//! Reading a whole run back (`bulkhead show`, resume).

use super::{err3, json_column, known, output_column, Cached};
use bulkhead_core::store::*;
use rusqlite::{Connection, OptionalExtension};
use std::path::PathBuf;

pub(super) fn load(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<StoredRun>> {
    let run = conn
        .one(
            "SELECT r.workflow, r.workflow_hash, r.workflow_file, d.workflow_yaml, r.params, r.status, r.created_at, r.finished_at, r.lease_owner, r.lease_expires_at, d.workflow_spec, r.run_key
             FROM runs r JOIN run_definitions d USING (run_id) WHERE r.run_id = ?1",
            [run_id],
            |r| {
                let row = format!("run `{run_id}`");
                let status: String = r.get(5)?;
                let key: Option<i64> = r.get(11)?;
                let key = key.ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        11,
                        rusqlite::types::Type::Null,
                        super::no_run_key(run_id).into(),
                    )
                })?;
                Ok((key, StoredRun {
                    run_id: run_id.to_string(),
                    workflow: r.get(0)?,
                    workflow_hash: r.get(1)?,
                    workflow_file: PathBuf::from(r.get::<_, String>(2)?),
                    workflow_yaml: r.get(3)?,
                    workflow_spec: r.get(10)?,
                    params: json_column(r.get(4)?, 4, &row, "params")?.unwrap_or(serde_json::Value::Null),
                    status: known(RunStatus::parse(&status), 5, &row, "run status", &status)?,
                    created_at: r.get(6)?,
                    finished_at: r.get(7)?,
                    lease_owner: r.get(8)?,
                    lease_expires_at: r.get(9)?,
                    plugins: Vec::new(),
                    tasks: Vec::new(),
                    attempts: Vec::new(),
                }))
            },
        )
        .optional()?;
    let Some((key, mut run)) = run else {
        return Ok(None);
    };
    run.plugins = conn
        .prepare_cached(
            "SELECT reference, hash FROM run_plugins WHERE run_id = ?1 ORDER BY reference",
        )?
        .query_map([run_id], |r| {
            Ok(PluginVersion {
                reference: r.get(0)?,
                hash: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    run.tasks = conn
        .prepare_cached(
            "SELECT task, status, attempts, uncounted, output, error_kind, error_message, exit_code, duration_us, fuel_used, peak_memory
             FROM tasks WHERE run_key = ?1 ORDER BY position",
        )?
        .query_map([key], |r| {
            let task: String = r.get(0)?;
            let row = format!("run `{run_id}` task `{task}`");
            let status: String = r.get(1)?;
            Ok(StoredTask {
                state: known(TaskStatus::parse(&status), 1, &row, "task status", &status)?,
                output: output_column(r.get(4)?, 4, &row)?,
                task,
                attempts: r.get(2)?,
                uncounted: r.get(3)?,
                error: err3(r.get(5)?, r.get(6)?, r.get(7)?),
                duration_us: r.get::<_, i64>(8)? as u64,
                fuel_used: r.get::<_, i64>(9)? as u64,
                peak_memory: r.get::<_, i64>(10)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    run.attempts = conn
        .prepare_cached(
            "SELECT t.task, a.attempt, a.status, a.started_at, a.finished_at, a.error_kind, a.error_message, a.exit_code,
                    coalesce(a.duration_us, 0), coalesce(a.fuel_used, 0), coalesce(a.peak_memory, 0)
             FROM attempts a JOIN tasks t ON t.run_key = a.run_key AND t.position = a.position
             WHERE a.run_key = ?1 ORDER BY a.position, a.attempt",
        )?
        .query_map([key], |r| {
            let task: String = r.get(0)?;
            let attempt: u32 = r.get(1)?;
            let row = format!("run `{run_id}` task `{task}` attempt {attempt}");
            let status: String = r.get(2)?;
            Ok(StoredAttempt {
                status: known(AttemptStatus::parse(&status), 2, &row, "attempt status", &status)?,
                task,
                attempt,
                started_at: r.get(3)?,
                finished_at: r.get(4)?,
                error: err3(r.get(5)?, r.get(6)?, r.get(7)?),
                duration_us: r.get::<_, i64>(8)? as u64,
                fuel_used: r.get::<_, i64>(9)? as u64,
                peak_memory: r.get::<_, i64>(10)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    run.count_started();
    Ok(Some(run))
}
