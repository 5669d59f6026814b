//! Reading a whole run back (`bulkhead show`, resume), in one snapshot.

use super::PostgresStore;
use bulkhead_core::store::*;
use deadpool_postgres::Transaction;
use std::path::PathBuf;

/// `(kind, message, exit code)` of a stored failure.
type Err3 = Option<(String, String, Option<i32>)>;

fn u64_of(v: i64) -> u64 {
    v.max(0) as u64
}

pub(super) async fn load(
    s: &PostgresStore,
    tx: &Transaction<'_>,
    run_id: &str,
) -> Result<Option<StoredRun>, StoreError> {
    let get = |e| s.err(e);
    let Some(r) = tx
        .query_opt(
            "SELECT r.workflow, r.workflow_hash, r.workflow_file, d.workflow_yaml, r.params, r.status,
                    bulkhead_ms(r.created_at), bulkhead_ms(r.finished_at), r.lease_owner,
                    bulkhead_ms(r.lease_expires_at), d.workflow_spec
             FROM runs r JOIN run_definitions d USING (run_id) WHERE r.run_id = $1",
            &[&run_id],
        )
        .await
        .map_err(get)?
    else {
        return Ok(None);
    };
    let row = format!("run `{run_id}`");
    let status: String = r.try_get(5).map_err(get)?;
    let mut run = StoredRun {
        run_id: run_id.to_string(),
        workflow: r.try_get(0).map_err(get)?,
        workflow_hash: r.try_get(1).map_err(get)?,
        workflow_file: PathBuf::from(r.try_get::<_, String>(2).map_err(get)?),
        workflow_yaml: r.try_get(3).map_err(get)?,
        workflow_spec: r.try_get(10).map_err(get)?,
        params: r.try_get(4).map_err(get)?,
        status: s.known(RunStatus::parse(&status), &row, "run status", &status)?,
        created_at: r.try_get(6).map_err(get)?,
        finished_at: r.try_get(7).map_err(get)?,
        lease_owner: r.try_get(8).map_err(get)?,
        lease_expires_at: r.try_get(9).map_err(get)?,
        plugins: Vec::new(),
        tasks: Vec::new(),
        attempts: Vec::new(),
    };
    for r in tx
        .query(
            "SELECT reference, hash FROM run_plugins WHERE run_id = $1 ORDER BY reference",
            &[&run_id],
        )
        .await
        .map_err(get)?
    {
        run.plugins.push(PluginVersion {
            reference: r.try_get(0).map_err(get)?,
            hash: r.try_get(1).map_err(get)?,
        });
    }
    for r in tx
        .query(
            "SELECT task, status, attempts, uncounted, output::text, error_kind, error_message, exit_code,
                    duration_us, fuel_used, peak_memory
             FROM tasks WHERE run_id = $1 ORDER BY position",
            &[&run_id],
        )
        .await
        .map_err(get)?
    {
        let task: String = r.try_get(0).map_err(get)?;
        let row = format!("run `{run_id}` task `{task}`");
        let status: String = r.try_get(1).map_err(get)?;
        let count = |i: usize| -> Result<u32, StoreError> {
            let n: i32 = r.try_get(i).map_err(get)?;
            u32::try_from(n).map_err(|_| s.corrupt(format!("{row}: negative attempt count {n}")))
        };
        run.tasks.push(StoredTask {
            state: s.known(TaskStatus::parse(&status), &row, "task status", &status)?,
            output: s.output(r.try_get(4).map_err(get)?, &row)?,
            attempts: count(2)?,
            uncounted: count(3)?,
            error: err3(s, &r, 5, &row)?,
            duration_us: u64_of(r.try_get(8).map_err(get)?),
            fuel_used: u64_of(r.try_get(9).map_err(get)?),
            peak_memory: u64_of(r.try_get(10).map_err(get)?),
            task,
        });
    }
    for r in tx
        .query(
            "SELECT a.task, a.attempt, a.status, bulkhead_ms(a.started_at), bulkhead_ms(a.finished_at),
                    a.error_kind, a.error_message, a.exit_code,
                    coalesce(a.duration_us, 0), coalesce(a.fuel_used, 0), coalesce(a.peak_memory, 0)
             FROM attempts a JOIN tasks t ON t.run_id = a.run_id AND t.task = a.task
             WHERE a.run_id = $1 ORDER BY t.position, a.attempt",
            &[&run_id],
        )
        .await
        .map_err(get)?
    {
        let task: String = r.try_get(0).map_err(get)?;
        let attempt: i32 = r.try_get(1).map_err(get)?;
        let row = format!("run `{run_id}` task `{task}` attempt {attempt}");
        let status: String = r.try_get(2).map_err(get)?;
        run.attempts.push(StoredAttempt {
            status: s.known(AttemptStatus::parse(&status), &row, "attempt status", &status)?,
            attempt: u32::try_from(attempt)
                .map_err(|_| s.corrupt(format!("{row}: negative attempt number")))?,
            started_at: r.try_get(3).map_err(get)?,
            finished_at: r.try_get(4).map_err(get)?,
            error: err3(s, &r, 5, &row)?,
            duration_us: u64_of(r.try_get(8).map_err(get)?),
            fuel_used: u64_of(r.try_get(9).map_err(get)?),
            peak_memory: u64_of(r.try_get(10).map_err(get)?),
            task,
        });
    }
    run.count_started();
    Ok(Some(run))
}

/// The failure in columns `at` (kind), `at + 1` (message, bytes) and `at + 2` (exit code).
fn err3(
    s: &PostgresStore,
    r: &tokio_postgres::Row,
    at: usize,
    row: &str,
) -> Result<Err3, StoreError> {
    let get = |e| s.err(e);
    let kind: Option<String> = r.try_get(at).map_err(get)?;
    let message = s.text(r.try_get(at + 1).map_err(get)?, row, "error message")?;
    let code: Option<i32> = r.try_get(at + 2).map_err(get)?;
    Ok(kind.map(|k| (k, message.unwrap_or_default(), code)))
}
