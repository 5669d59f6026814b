//! The PostgreSQL backend (`--store postgres://user@host/db`): several `bulkhead serve` hosts on
//! one database, which is the only coordinator. Rows are claimed with `FOR UPDATE SKIP LOCKED`,
//! a run's lease is checked and renewed in the database's clock, and every commit of a run's
//! transitions locks the run's row and checks that the committing host still holds the lease, in
//! the same transaction that writes: a host that lost its lease never commits another transition.
//!
//! Times cross the [`Store`] API as milliseconds of the caller's clock. Where a lease is decided
//! (taken, judged expired, renewed), this backend reads such a time as an offset from the
//! caller's clock and applies it to the database's clock (`now_ms()` becomes the database's
//! `clock_timestamp()`, `now_ms() + 61 s` becomes 61 s after it), so the hosts of a cluster agree
//! on when a lease ends even when their clocks do not. Times that are records (when an attempt
//! ended, when a trigger was claimed) are stored as given.
//!
//! Types are native (`timestamptz`, `boolean`, `json`, `bytea`); the schema versions are the
//! SQLite backend's, applied at start under an advisory lock, and a newer schema is refused
//! untouched.

use async_trait::async_trait;
use bulkhead_core::store::lease::{check_acquirable, lease_is_free};
use bulkhead_core::store::*;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

mod copies;
mod read;
#[cfg(test)]
mod tests;
mod write;

/// The schema version this build writes (the same numbers as the SQLite backend's).
pub const SCHEMA_VERSION: i64 = 9;

/// The numbered migrations, applied in order to bring a database to [`SCHEMA_VERSION`].
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_triggers.sql")),
    (3, include_str!("../migrations/0003_trigger_cancel.sql")),
    (4, include_str!("../migrations/0004_task_order.sql")),
    (5, include_str!("../migrations/0005_workflow_spec.sql")),
    (6, include_str!("../migrations/0006_hosts.sql")),
    (7, include_str!("../migrations/0007_active_runs.sql")),
    (8, include_str!("../migrations/0008_open_triggers.sql")),
    (
        9,
        include_str!("../migrations/0009_fewer_trigger_indexes.sql"),
    ),
];

/// The advisory lock that serialises migrations of one database across hosts ("BULKHEAD").
const MIGRATION_LOCK: i64 = 0x4255_4c4b_4845_4144;

/// A session idle inside a transaction this long is ended by the server (a fraction of the
/// lease, so a paused host's locks are gone long before its lease expires).
pub const IDLE_IN_TRANSACTION_MS: i64 = LEASE_TTL_MS / 4;

/// How long a statement waits for a row lock before it fails.
pub const LOCK_TIMEOUT_MS: i64 = 10_000;

/// Connections a host keeps open to the database.
pub const POOL_SIZE: usize = 16;

/// Whether `store` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// A PostgreSQL state store: a pool of connections to one database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// `postgres://user@host:port/db`, never the password: what messages name.
    name: PathBuf,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.name)
            .finish()
    }
}

/// The URL without its password, for messages.
fn describe(config: &tokio_postgres::Config) -> PathBuf {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    PathBuf::from(format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    ))
}

/// What a database error means for Bulkhead.
fn map(name: &Path, e: tokio_postgres::Error) -> StoreError {
    let path = name.to_path_buf();
    if let Some(db) = e.as_db_error() {
        let reason = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        let code = db.code();
        return if *code == SqlState::DISK_FULL {
            StoreError::Write {
                path,
                reason: "the database server's disk is full".into(),
            }
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            StoreError::Write {
                path,
                reason: format!("the database is read-only (a standby?): {reason}"),
            }
        } else if [
            SqlState::INVALID_CATALOG_NAME,
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
        {
            StoreError::Open { path, reason }
        } else if [SqlState::DATA_CORRUPTED, SqlState::INDEX_CORRUPTED].contains(code) {
            StoreError::Corrupt { path, reason }
        } else {
            StoreError::Other { path, reason }
        };
    }
    if e.is_closed() {
        return StoreError::Open {
            path,
            reason: format!("the connection to the database was closed ({e})"),
        };
    }
    StoreError::Other {
        path,
        reason: e.to_string(),
    }
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date (under an advisory
    /// lock, so hosts starting together apply each migration once). A database whose schema is
    /// newer than this build's is refused and left untouched.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            path: PathBuf::from(url.split('@').next_back().unwrap_or("postgres://")),
            reason: format!("not a PostgreSQL URL ({e}); write postgres://USER@HOST:PORT/DATABASE"),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("bulkhead");
        // A host paused mid-transaction (SIGSTOP, a VM freeze) must not hold a run's row lock
        // until it wakes: the server ends such a session, rolling its transaction back and
        // freeing its locks, well before the host's lease runs out, so another host can take
        // the run over. A statement that waits on a lock gives up instead of waiting forever.
        let mut options = config.get_options().unwrap_or_default().to_string();
        options.push_str(&format!(
            " -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
        ));
        config.options(options.trim());
        let name = describe(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Open {
                path: name.clone(),
                reason: e.to_string(),
            })?;
        let store = PostgresStore { pool, name };
        store.migrate().await?;
        Ok(store)
    }

    /// The database, as messages name it (no password).
    pub fn name(&self) -> &Path {
        &self.name
    }

    fn err(&self, e: tokio_postgres::Error) -> StoreError {
        map(&self.name, e)
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.name.clone(),
            reason: format!("{reason} (the database was altered or is damaged)"),
        }
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            // No connection at all (refused, timed out, no such database or user): nothing
            // to do with Bulkhead's data.
            deadpool_postgres::PoolError::Backend(e) => match self.err(e) {
                StoreError::Other { path, reason } => StoreError::Open { path, reason },
                other => other,
            },
            other => StoreError::Open {
                path: self.name.clone(),
                reason: format!("no connection to the database ({other})"),
            },
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| self.err(e))?;
        let exists: bool = tx
            .query_one("SELECT to_regclass('bulkhead_schema') IS NOT NULL", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err(e))?;
        let from: i64 = if exists {
            tx.query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM bulkhead_schema",
                &[],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err(e))?
        } else {
            0
        };
        if from > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.name.clone(),
                found: from,
                supported: SCHEMA_VERSION,
            });
        }
        if from == SCHEMA_VERSION {
            return Ok(());
        }
        tx.batch_execute("CREATE TABLE IF NOT EXISTS bulkhead_schema (version bigint NOT NULL)")
            .await
            .map_err(|e| self.err(e))?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
            tx.batch_execute(sql).await.map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO bulkhead_schema (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// The database's clock, moved by how far `now` (of the caller's clock) is from this host's
    /// clock: see the crate's documentation.
    async fn db_now(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let db: i64 = tx
            .query_one("SELECT bulkhead_ms(clock_timestamp())", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err(e))?;
        Ok(db + (now - now_ms()))
    }

    /// A stored name, parsed; a name this build does not know is an error naming the row.
    fn known<T>(
        &self,
        parsed: Option<T>,
        row: &str,
        what: &str,
        value: &str,
    ) -> Result<T, StoreError> {
        parsed.ok_or_else(|| self.corrupt(format!("{row}: unknown {what} `{value}`")))
    }

    /// A `bytea` column that holds text.
    fn text(
        &self,
        bytes: Option<Vec<u8>>,
        row: &str,
        what: &str,
    ) -> Result<Option<String>, StoreError> {
        bytes
            .map(|b| {
                String::from_utf8(b)
                    .map_err(|_| self.corrupt(format!("{row}: {what} is not UTF-8")))
            })
            .transpose()
    }

    /// An output column (read as its text): checked to be one JSON value.
    fn output(&self, text: Option<String>, row: &str) -> Result<Option<OutputJson>, StoreError> {
        text.map(|t| {
            OutputJson::parse(t.into_bytes())
                .map_err(|e| self.corrupt(format!("{row}: output is not JSON ({e})")))
        })
        .transpose()
    }

    fn trigger(&self, r: &Row) -> Result<Trigger, StoreError> {
        let get = |e| self.err(e);
        let key: String = r.try_get(0).map_err(get)?;
        let row = format!("trigger `{key}`");
        let kind: String = r.try_get(1).map_err(get)?;
        Ok(Trigger {
            kind: self.known(TriggerKind::parse(&kind), &row, "trigger kind", &kind)?,
            workflow: r.try_get(2).map_err(get)?,
            params: r.try_get(3).map_err(get)?,
            key,
            due_at: r.try_get(4).map_err(get)?,
            created_at: r.try_get(5).map_err(get)?,
            run_id: r.try_get(6).map_err(get)?,
            claimed_at: r.try_get(7).map_err(get)?,
            error: r.try_get(8).map_err(get)?,
            cancelled_at: r.try_get(9).map_err(get)?,
        })
    }

    /// `(status, lease owner, lease expiry)` of a run, its row locked until the transaction ends.
    async fn lease_row(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        run_id: &str,
    ) -> Result<Option<LeaseRow>, StoreError> {
        let Some(row) = tx
            .query_opt(
                "SELECT status, lease_owner, bulkhead_ms(lease_expires_at) FROM runs WHERE run_id = $1 FOR UPDATE",
                &[&run_id],
            )
            .await
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let get = |e| self.err(e);
        Ok(Some((
            row.try_get(0).map_err(get)?,
            row.try_get(1).map_err(get)?,
            row.try_get(2).map_err(get)?,
        )))
    }

    async fn run_exists(&self, client: &Object, run_id: &str) -> Result<(), StoreError> {
        let n = client
            .query_opt("SELECT 1 FROM runs WHERE run_id = $1", &[&run_id])
            .await
            .map_err(|e| self.err(e))?;
        match n {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownRun(run_id.to_string())),
        }
    }
}

/// `(status, lease owner, lease expiry)` of a run.
type LeaseRow = (String, Option<String>, Option<i64>);

const TRIGGER_COLUMNS: &str =
    "trigger_key, kind, workflow, params, bulkhead_ms(due_at), bulkhead_ms(created_at), run_id,
     bulkhead_ms(claimed_at), error, bulkhead_ms(cancelled_at)";

/// Interrupts the attempts a run's former holder left running (they do not count against the
/// retry budget).
const INTERRUPT_RUNNING: [&str; 2] = [
    "UPDATE tasks SET uncounted = uncounted + (SELECT count(*) FROM attempts a
       WHERE a.run_id = tasks.run_id AND a.task = tasks.task AND a.status = 'running')
     WHERE run_id = $1",
    "UPDATE attempts SET status = 'interrupted', finished_at = bulkhead_ts($2) WHERE run_id = $1 AND status = 'running'",
];

#[async_trait]
impl Store for PostgresStore {
    async fn create_run_with(
        &self,
        run: NewRun,
        first: Vec<Transition>,
    ) -> Result<Lease, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let until = self.db_now(&tx, run.lease_expires_at).await?;
        let inserted = tx
            .execute(
                "INSERT INTO runs (run_id, workflow, workflow_hash, workflow_file, params, status, created_at, lease_owner, lease_expires_at, lease_generation)
                 VALUES ($1, $2, $3, $4, $5, 'running', bulkhead_ts($6), $7, bulkhead_ts($8), $9)
                 ON CONFLICT (run_id) DO NOTHING",
                &[
                    &run.run_id,
                    &run.workflow,
                    &run.workflow_hash,
                    &run.workflow_file.to_string_lossy().as_ref(),
                    &run.params,
                    &run.created_at,
                    &run.owner,
                    &until,
                    &Lease::FIRST,
                ],
            )
            .await
            .map_err(|e| self.err(e))?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "run `{}` already exists; a run id is used once",
                run.run_id
            )));
        }
        // The trigger that asked for this run (if one did) is no longer open.
        tx.execute(
            "UPDATE triggers SET fulfilled_at = bulkhead_ts($2) WHERE run_id = $1 AND fulfilled_at IS NULL",
            &[&run.run_id, &run.created_at],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO run_definitions (run_id, workflow_yaml, workflow_spec) VALUES ($1, $2, $3)",
            &[&run.run_id, &run.workflow_yaml, &run.workflow_spec],
        )
        .await
        .map_err(|e| self.err(e))?;
        let (refs, hashes): (Vec<&str>, Vec<&str>) = run
            .plugins
            .iter()
            .map(|p| (p.reference.as_str(), p.hash.as_str()))
            .unzip();
        tx.execute(
            "INSERT INTO run_plugins (run_id, reference, hash) SELECT $1, * FROM unnest($2::text[], $3::text[])",
            &[&run.run_id, &refs, &hashes],
        )
        .await
        .map_err(|e| self.err(e))?;
        // One statement for every task, however many.
        let tasks: Vec<&str> = run.tasks.iter().map(String::as_str).collect();
        tx.execute(
            "INSERT INTO tasks (run_id, task, position, status)
             SELECT $1, t.task, (t.n - 1)::integer, 'pending' FROM unnest($2::text[]) WITH ORDINALITY AS t (task, n)",
            &[&run.run_id, &tasks],
        )
        .await
        .map_err(|e| self.err(e))?;
        write::apply(&tx, &run.run_id, &run.owner, &first)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Lease {
            owner: run.owner,
            generation: Lease::FIRST,
        })
    }

    async fn commit(
        &self,
        run_id: &str,
        lease: &Lease,
        batch: Vec<Transition>,
    ) -> Result<Commit, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        // One statement takes the row lock, checks the holder and renews the lease: it waits
        // for any take-over in progress and then finds no row if the lease moved on. (A
        // `RunEnded` in the batch clears the lease after it.)
        let renew = tx
            .prepare_cached(
                "UPDATE runs SET lease_expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'
                 WHERE run_id = $1 AND lease_owner = $2 AND lease_generation = $4 RETURNING cancel_requested",
            )
            .await
            .map_err(|e| self.err(e))?;
        let row = tx
            .query_opt(
                &renew,
                &[&run_id, &lease.owner, &LEASE_TTL_MS, &lease.generation],
            )
            .await
            .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            let exists = tx
                .query_opt("SELECT 1 FROM runs WHERE run_id = $1", &[&run_id])
                .await
                .map_err(|e| self.err(e))?;
            return Err(match exists {
                Some(_) => StoreError::LostLease(run_id.to_string()),
                None => StoreError::UnknownRun(run_id.to_string()),
            });
        };
        let cancel: bool = row.try_get(0).map_err(|e| self.err(e))?;
        write::apply(&tx, run_id, &lease.owner, &batch)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Commit {
            cancel_requested: cancel,
        })
    }

    async fn acquire(
        &self,
        run_id: &str,
        owner: &Owner,
        now: i64,
        ttl: i64,
    ) -> Result<Lease, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let clock = self.db_now(&tx, now).await?;
        let (status, holder, until) = self
            .lease_row(&tx, run_id)
            .await?
            .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))?;
        check_acquirable(run_id, &status, holder.as_deref(), until, owner, clock)?;
        tx.execute(INTERRUPT_RUNNING[0], &[&run_id])
            .await
            .map_err(|e| self.err(e))?;
        tx.execute(INTERRUPT_RUNNING[1], &[&run_id, &now])
            .await
            .map_err(|e| self.err(e))?;
        let generation: i64 = tx
            .query_one(
                "UPDATE runs SET lease_owner = $2, lease_expires_at = bulkhead_ts($3), status = 'running',
                        cancel_requested = false, lease_generation = lease_generation + 1
                 WHERE run_id = $1 RETURNING lease_generation",
                &[&run_id, &owner.0, &(clock + ttl)],
            )
            .await
            .map_err(|e| self.err(e))?
            .try_get(0)
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Lease {
            owner: owner.0.clone(),
            generation,
        })
    }

    async fn release(&self, run_id: &str, lease: &Lease) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE run_id = $1 AND lease_owner = $2 AND lease_generation = $3",
                &[&run_id, &lease.owner, &lease.generation],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn load(&self, run_id: &str) -> Result<StoredRun, StoreError> {
        let mut client = self.client().await?;
        // One snapshot for the run, its tasks and its attempts.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.err(e))?;
        let run = read::load(self, &tx, run_id)
            .await?
            .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(run)
    }

    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let client = self.client().await?;
        let limit = if filter.limit == 0 {
            i64::MAX
        } else {
            i64::try_from(filter.limit).unwrap_or(i64::MAX)
        };
        let status = filter.status.map(RunStatus::as_str);
        // Each side is ordered and cut on its own, so a page reads about `limit` rows of each.
        let rows = client
            .query(
                "WITH page AS (SELECT run_id, workflow, status, started_at, finished_at, due_at FROM (
                   (SELECT r.run_id, r.workflow, r.status, bulkhead_ms(r.created_at) AS started_at,
                           bulkhead_ms(r.finished_at) AS finished_at, bulkhead_ms(t.due_at) AS due_at
                      FROM runs r LEFT JOIN triggers t ON t.run_id = r.run_id
                     WHERE ($1::text IS NULL OR r.workflow = $1) AND ($2::text IS NULL OR r.status = $2)
                       AND ($4::text IS NULL OR r.run_id < $4)
                     ORDER BY r.run_id DESC LIMIT $3)
                   UNION ALL
                   (SELECT * FROM (
                      SELECT t.run_id, t.workflow,
                             CASE WHEN t.cancelled_at IS NOT NULL THEN 'cancelled'
                                  WHEN t.error IS NOT NULL THEN 'failed' ELSE 'pending' END AS status,
                             NULL::bigint AS started_at,
                             bulkhead_ms(coalesce(t.cancelled_at, CASE WHEN t.error IS NOT NULL THEN t.claimed_at END)) AS finished_at,
                             bulkhead_ms(t.due_at) AS due_at
                        FROM triggers t
                       WHERE t.fulfilled_at IS NULL
                         AND (t.claimed_at IS NULL OR t.cancelled_at IS NOT NULL OR t.error IS NOT NULL)
                         AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)
                         AND ($1::text IS NULL OR t.workflow = $1) AND ($4::text IS NULL OR t.run_id < $4)) p
                     WHERE ($2::text IS NULL OR status = $2)
                     ORDER BY run_id DESC LIMIT $3)) page
                 ORDER BY run_id DESC LIMIT $3),
                 prog AS (SELECT k.run_id, count(*) AS n,
                                 count(*) FILTER (WHERE k.status = 'succeeded') AS ok,
                                 count(*) FILTER (WHERE k.status = 'failed') AS bad,
                                 count(*) FILTER (WHERE k.status = 'skipped') AS skip,
                                 count(*) FILTER (WHERE k.status = 'cancelled') AS gone
                            FROM tasks k WHERE k.run_id IN (SELECT run_id FROM page) GROUP BY k.run_id),
                 busy AS (SELECT a.run_id, count(*) AS n FROM attempts a
                           WHERE a.run_id IN (SELECT run_id FROM page) AND a.status = 'running' GROUP BY a.run_id)
                 SELECT page.run_id, page.workflow, page.status, page.started_at, page.finished_at, page.due_at,
                        coalesce(prog.n, 0), coalesce(prog.ok, 0), coalesce(prog.bad, 0),
                        coalesce(prog.skip, 0), coalesce(prog.gone, 0), coalesce(busy.n, 0)
                   FROM page LEFT JOIN prog ON prog.run_id = page.run_id LEFT JOIN busy ON busy.run_id = page.run_id
                  ORDER BY page.run_id DESC",
                &[&filter.workflow, &status, &limit, &filter.before],
            )
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let get = |e| self.err(e);
                let run_id: String = r.try_get(0).map_err(get)?;
                let status: String = r.try_get(2).map_err(get)?;
                let row = format!("run `{run_id}`");
                Ok(RunSummary {
                    status: self.known(RunStatus::parse(&status), &row, "run status", &status)?,
                    workflow: r.try_get(1).map_err(get)?,
                    started_at: r.try_get::<_, Option<i64>>(3).map_err(get)?.map(rfc3339),
                    finished_at: r.try_get::<_, Option<i64>>(4).map_err(get)?.map(rfc3339),
                    due_at: r.try_get::<_, Option<i64>>(5).map_err(get)?.map(rfc3339),
                    progress: RunProgress::of_counts(
                        r.try_get(6).map_err(get)?,
                        r.try_get(7).map_err(get)?,
                        r.try_get(8).map_err(get)?,
                        r.try_get(9).map_err(get)?,
                        r.try_get(10).map_err(get)?,
                        r.try_get(11).map_err(get)?,
                    ),
                    run_id,
                })
            })
            .collect()
    }

    async fn logs(
        &self,
        run_id: &str,
        task: Option<&str>,
        attempt: Option<u32>,
    ) -> Result<Vec<AttemptLog>, StoreError> {
        let client = self.client().await?;
        self.run_exists(&client, run_id).await?;
        let attempt = attempt.map(|a| i32::try_from(a).unwrap_or(i32::MAX));
        let rows = client
            .query(
                "SELECT a.task, a.attempt, a.log FROM attempts a JOIN tasks t ON t.run_id = a.run_id AND t.task = a.task
                 WHERE a.run_id = $1 AND ($2::text IS NULL OR a.task = $2) AND ($3::integer IS NULL OR a.attempt = $3)
                 ORDER BY t.position, a.attempt",
                &[&run_id, &task, &attempt],
            )
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let get = |e| self.err(e);
                let task: String = r.try_get(0).map_err(get)?;
                let attempt: i32 = r.try_get(1).map_err(get)?;
                let row = format!("run `{run_id}` task `{task}` attempt {attempt}");
                Ok(AttemptLog {
                    log: self
                        .text(r.try_get(2).map_err(get)?, &row, "log")?
                        .unwrap_or_default(),
                    attempt: u32::try_from(attempt)
                        .map_err(|_| self.corrupt(format!("{row}: negative attempt number")))?,
                    task,
                })
            })
            .collect()
    }

    async fn task_results(
        &self,
        run_id: &str,
        from: usize,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<TaskResult>, StoreError> {
        let client = self.client().await?;
        self.run_exists(&client, run_id).await?;
        let from = i32::try_from(from).unwrap_or(i32::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        // The byte bound is applied by the server (a running sum in file order), so rows past
        // it never cross the wire.
        let rows = client
            .query(
                "SELECT task, output, log FROM (
                   SELECT task, output, log,
                          sum(coalesce(octet_length(output), 0) + coalesce(octet_length(log), 0))
                            OVER (ORDER BY position ROWS UNBOUNDED PRECEDING)
                          - coalesce(octet_length(output), 0) - coalesce(octet_length(log), 0) AS before,
                          row_number() OVER (ORDER BY position) AS n,
                          position
                   FROM (SELECT t.task, t.output::text AS output, t.position,
                                (SELECT a.log FROM attempts a
                                 WHERE a.run_id = t.run_id AND a.task = t.task
                                 ORDER BY a.attempt DESC LIMIT 1) AS log
                         FROM tasks t WHERE t.run_id = $1 AND t.position >= $2
                         ORDER BY t.position LIMIT $3) page
                 ) counted
                 WHERE n = 1 OR before < $4 ORDER BY position",
                &[&run_id, &from, &limit, &max_bytes],
            )
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let get = |e| self.err(e);
                let task: String = r.try_get(0).map_err(get)?;
                let row = format!("run `{run_id}` task `{task}`");
                Ok(TaskResult {
                    output: self.output(r.try_get(1).map_err(get)?, &row)?,
                    log: self
                        .text(r.try_get(2).map_err(get)?, &row, "log")?
                        .unwrap_or_default(),
                    task,
                })
            })
            .collect()
    }

    async fn unfinished(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let now = self.db_now(&tx, now).await?; // leases only
        let me = Owner::new();
        let rows = tx
            .query(
                "SELECT run_id, status, lease_owner, bulkhead_ms(lease_expires_at) FROM runs
                 WHERE status IN ('pending', 'running', 'interrupted') ORDER BY created_at, run_id",
                &[],
            )
            .await
            .map_err(|e| self.err(e))?;
        let mut ids = Vec::new();
        for r in &rows {
            let get = |e| self.err(e);
            let status: String = r.try_get(1).map_err(get)?;
            let holder: Option<String> = r.try_get(2).map_err(get)?;
            let until: Option<i64> = r.try_get(3).map_err(get)?;
            if lease_is_free(&status, holder.as_deref(), until, &me, now) {
                ids.push(r.try_get(0).map_err(get)?);
            }
        }
        Ok(ids)
    }

    async fn request_cancel(&self, run_id: &str, now: i64) -> Result<CancelOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let clock = self.db_now(&tx, now).await?;
        let Some((status, holder, until)) = self.lease_row(&tx, run_id).await? else {
            // No run yet: cancel its trigger, if it has one.
            let t = tx
                .query_opt(
                    &format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE run_id = $1 FOR UPDATE"),
                    &[&run_id],
                )
                .await
                .map_err(|e| self.err(e))?
                .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))?;
            let outcome = match self.trigger(&t)?.cancel()? {
                Ok(()) => {
                    tx.execute(
                        "UPDATE triggers SET cancelled_at = bulkhead_ts($2), claimed_at = bulkhead_ts($2) WHERE run_id = $1",
                        &[&run_id, &now],
                    )
                    .await
                    .map_err(|e| self.err(e))?;
                    CancelOutcome::Cancelled
                }
                Err(status) => CancelOutcome::AlreadyEnded(status),
            };
            tx.commit().await.map_err(|e| self.err(e))?;
            return Ok(outcome);
        };
        let status = self.known(
            RunStatus::parse(&status),
            &format!("run `{run_id}`"),
            "run status",
            &status,
        )?;
        if status.is_final() {
            return Ok(CancelOutcome::AlreadyEnded(status));
        }
        if !lease_is_free(
            status.as_str(),
            holder.as_deref(),
            until,
            &Owner::new(),
            clock,
        ) {
            tx.execute(
                "UPDATE runs SET cancel_requested = true WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| self.err(e))?;
            tx.commit().await.map_err(|e| self.err(e))?;
            return Ok(CancelOutcome::Asked);
        }
        tx.execute(INTERRUPT_RUNNING[1], &[&run_id, &now])
            .await
            .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE tasks SET status = 'cancelled', error_kind = 'cancelled', error_message = convert_to('the run was cancelled', 'UTF8')
             WHERE run_id = $1 AND status = 'pending'",
            &[&run_id],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE runs SET status = 'cancelled', finished_at = bulkhead_ts($2), lease_owner = NULL, lease_expires_at = NULL WHERE run_id = $1",
            &[&run_id, &now],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(CancelOutcome::Cancelled)
    }

    async fn reset_tasks(&self, run_id: &str, tasks: &[String]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE",
                &[&run_id],
            )
            .await
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Err(StoreError::UnknownRun(run_id.to_string()));
        }
        tx.execute(
            "WITH started AS (SELECT task, max(attempt) AS n FROM attempts
                               WHERE run_id = $1 AND task = ANY($2::text[]) GROUP BY task)
             UPDATE tasks SET status = 'pending', output = NULL, error_kind = NULL, error_message = NULL,
                    exit_code = NULL,
                    attempts = greatest(attempts, coalesce((SELECT n FROM started s WHERE s.task = tasks.task), 0)),
                    uncounted = greatest(attempts, coalesce((SELECT n FROM started s WHERE s.task = tasks.task), 0))
             WHERE run_id = $1 AND task = ANY($2::text[])",
            &[&run_id, &tasks],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = NULL, cancel_requested = false WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn gc(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let ended =
            "created_at < bulkhead_ts($1) AND status IN ('succeeded', 'failed', 'cancelled')";
        // Triggers go with their runs (a schedule fires on from its newest fire, never twice).
        tx.execute(
            &format!(
                "DELETE FROM triggers WHERE run_id IN (SELECT run_id FROM runs WHERE {ended})"
            ),
            &[&before],
        )
        .await
        .map_err(|e| self.err(e))?;
        let mut ids: Vec<String> = tx
            .query(
                &format!("DELETE FROM runs WHERE {ended} RETURNING run_id"),
                &[&before],
            )
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        // Runs that never started: cancelled before they were due, or failed to start.
        let never: Vec<String> = tx
            .query(
                "DELETE FROM triggers t WHERE fulfilled_at IS NULL AND created_at < bulkhead_ts($1) AND (cancelled_at IS NOT NULL OR error IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)
                 RETURNING run_id",
                &[&before],
            )
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        ids.extend(never);
        ids.sort();
        Ok(ids)
    }

    async fn plugin_hashes_in_use(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        client
            .query("SELECT DISTINCT hash FROM run_plugins ORDER BY hash", &[])
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| r.try_get(0).map_err(|e| self.err(e)))
            .collect()
    }

    async fn add_trigger(&self, t: NewTrigger) -> Result<bool, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO triggers (trigger_key, kind, workflow, params, due_at, created_at, run_id)
                 VALUES ($1, $2, $3, $4, bulkhead_ts($5), bulkhead_ts($6), $7) ON CONFLICT (trigger_key) DO NOTHING",
                &[&t.key(), &t.kind.as_str(), &t.workflow, &t.params, &t.due_at, &t.created_at, &t.run_id],
            )
            .await
            .map(|n| n == 1)
            .map_err(|e| self.err(e))
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        caps: &RunCaps,
    ) -> Result<Vec<Trigger>, StoreError> {
        // Each claim is one UPDATE over rows locked with SKIP LOCKED: hosts claiming at the same
        // moment take disjoint sets and never wait for each other; a row is stamped by exactly one.
        // A capped workflow's count and claim are made under a transaction-scoped advisory lock
        // of that workflow (taken in name order by every host, so never in a cycle): two hosts
        // cannot both see room for the last run. Each statement sees what committed before it
        // (READ COMMITTED), so the count after the lock includes the other hosts' claims.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let orphans = tx
            .query(
                &format!(
                    "UPDATE triggers SET claimed_at = bulkhead_ts($1) WHERE trigger_key IN
                       (SELECT trigger_key FROM triggers t WHERE fulfilled_at IS NULL
                          AND claimed_at IS NOT NULL AND claimed_at < bulkhead_ts($1::bigint - $3::bigint)
                          AND error IS NULL AND cancelled_at IS NULL
                          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)
                        ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING {TRIGGER_COLUMNS}"
                ),
                &[&now, &limit, &ORPHAN_AFTER_MS],
            )
            .await
            .map_err(|e| self.err(e))?;
        let mut claimed: Vec<Row> = Vec::new();
        for (workflow, cap) in caps {
            let room = limit - claimed.len() as i64;
            if room <= 0 {
                break;
            }
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('bulkhead max_active_runs ' || $1::text, 0))",
                &[workflow],
            )
            .await
            .map_err(|e| self.err(e))?;
            let active: i64 = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM runs WHERE workflow = $1 AND status IN ('pending', 'running', 'interrupted'))
                          + (SELECT count(*) FROM triggers t WHERE fulfilled_at IS NULL
                               AND workflow = $1 AND claimed_at >= bulkhead_ts($2::bigint - $3::bigint)
                               AND error IS NULL AND cancelled_at IS NULL
                               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id))",
                    &[workflow, &now, &CLAIMS_IN_FLIGHT_MS],
                )
                .await
                .map_err(|e| self.err(e))?
                .get(0);
            let free = (i64::from(*cap) - active).clamp(0, room);
            if free == 0 {
                continue;
            }
            let mut some = tx
                .query(
                    &format!(
                        "UPDATE triggers SET claimed_at = bulkhead_ts($1) WHERE trigger_key IN
                           (SELECT trigger_key FROM triggers WHERE fulfilled_at IS NULL AND claimed_at IS NULL AND due_at <= bulkhead_ts($1)
                              AND workflow = $3 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING {TRIGGER_COLUMNS}"
                    ),
                    &[&now, &free, workflow],
                )
                .await
                .map_err(|e| self.err(e))?;
            claimed.append(&mut some);
        }
        let room = limit - claimed.len() as i64;
        if room > 0 {
            let names: Vec<&str> = caps.keys().map(String::as_str).collect();
            let mut some = tx
                .query(
                    &format!(
                        "UPDATE triggers SET claimed_at = bulkhead_ts($1) WHERE trigger_key IN
                           (SELECT trigger_key FROM triggers WHERE fulfilled_at IS NULL AND claimed_at IS NULL AND due_at <= bulkhead_ts($1)
                              AND workflow <> ALL($3) ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING {TRIGGER_COLUMNS}"
                    ),
                    &[&now, &room, &names],
                )
                .await
                .map_err(|e| self.err(e))?;
            claimed.append(&mut some);
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        let order = |rows: Vec<Row>| -> Result<Vec<Trigger>, StoreError> {
            let mut ts = rows
                .iter()
                .map(|r| self.trigger(r))
                .collect::<Result<Vec<_>, _>>()?;
            // RETURNING gives rows in no promised order: oldest due first, as documented.
            ts.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
            Ok(ts)
        };
        let mut out = order(claimed)?;
        out.extend(order(orphans)?);
        Ok(out)
    }

    async fn fail_trigger(&self, key: &str, error: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE triggers SET error = $2 WHERE trigger_key = $1",
                &[&key, &error],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn trigger_of_run(&self, run_id: &str) -> Result<Option<Trigger>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE run_id = $1"),
                &[&run_id],
            )
            .await
            .map_err(|e| self.err(e))?
            .map(|r| self.trigger(&r))
            .transpose()
    }

    async fn pending_triggers(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM triggers WHERE fulfilled_at IS NULL AND claimed_at IS NULL",
                &[],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err(e))?;
        Ok(n.max(0) as u64)
    }

    async fn last_cron_fire(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        client
            .query_one(
                "SELECT bulkhead_ms(max(due_at)) FROM triggers WHERE workflow = $1 AND kind = 'cron'",
                &[&workflow],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err(e))
    }

    async fn heartbeat(&self, beat: &HostBeat) -> Result<(), StoreError> {
        // `last_seen` is the database's clock: hosts are judged alive by one clock.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO hosts (owner, started_at, last_seen, slots, slots_in_use, runs)
             VALUES ($1, bulkhead_ts($2), clock_timestamp(), $3, $4, $5)
             ON CONFLICT (owner) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen,
               slots = excluded.slots, slots_in_use = excluded.slots_in_use, runs = excluded.runs",
            &[&beat.owner, &beat.started_at, &n(beat.slots), &n(beat.slots_in_use), &n(beat.runs)],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM hosts WHERE last_seen < clock_timestamp() - $1::bigint * interval '1 millisecond'",
            &[&HOST_FORGOTTEN_MS],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn hosts(&self, now: i64, within: i64) -> Result<Vec<HostBeat>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let clock = self.db_now(&tx, now).await?;
        let rows = tx
            .query(
                "SELECT owner, bulkhead_ms(started_at), bulkhead_ms(last_seen), slots, slots_in_use, runs FROM hosts
                 WHERE last_seen >= bulkhead_ts($1) ORDER BY owner",
                &[&(clock - within)],
            )
            .await
            .map_err(|e| self.err(e))?;
        let count = |r: &Row, i: usize| -> Result<u32, StoreError> {
            let v: i32 = r.try_get(i).map_err(|e| self.err(e))?;
            u32::try_from(v).map_err(|_| self.corrupt(format!("host row: negative count {v}")))
        };
        rows.iter()
            .map(|r| {
                Ok(HostBeat {
                    owner: r.try_get(0).map_err(|e| self.err(e))?,
                    started_at: r.try_get(1).map_err(|e| self.err(e))?,
                    last_seen: r.try_get(2).map_err(|e| self.err(e))?,
                    slots: count(r, 3)?,
                    slots_in_use: count(r, 4)?,
                    runs: count(r, 5)?,
                })
            })
            .collect()
    }
}

/// Creates the empty database `name` on the server at `server_url` (any database of it that
/// the user may connect to) and returns its URL. For benchmarks and tests; `name` must be a
/// plain identifier.
pub async fn create_database(server_url: &str, name: &str) -> Result<String, StoreError> {
    let (config, client) = admin(server_url, name).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| map(&describe(&config), e))?;
    let base = server_url.rsplit_once('/').map_or(server_url, |(b, _)| b);
    let query = server_url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Ok(format!("{base}/{name}{query}"))
}

/// Drops the database `name` of the server at `server_url`, closing its connections.
pub async fn drop_database(server_url: &str, name: &str) -> Result<(), StoreError> {
    let (config, client) = admin(server_url, name).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(|e| map(&describe(&config), e))
}

async fn admin(
    server_url: &str,
    name: &str,
) -> Result<(tokio_postgres::Config, tokio_postgres::Client), StoreError> {
    let config: tokio_postgres::Config = server_url.parse().map_err(|e| StoreError::Open {
        path: PathBuf::from(server_url.split('@').next_back().unwrap_or("postgres://")),
        reason: format!("not a PostgreSQL URL ({e})"),
    })?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::Conflict(format!(
            "`{name}` is not a plain database name (letters, digits, _)"
        )));
    }
    let (client, conn) = config.connect(NoTls).await.map_err(|e| StoreError::Open {
        path: describe(&config),
        reason: e.to_string(),
    })?;
    tokio::spawn(conn);
    Ok((config, client))
}
