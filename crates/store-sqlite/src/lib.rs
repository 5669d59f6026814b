//! The SQLite backend: one file (default `.bulkhead/bulkhead.db`), WAL mode, `synchronous=FULL`
//! (a commit is on disk before it returns, so even a power loss keeps every committed
//! transition), one transaction per batch of transitions (group commit).

use async_trait::async_trait;
use bulkhead_core::store::*;

mod conn;
mod read;
#[cfg(test)]
mod tests;
mod write;

use bulkhead_core::store::lease::{check_acquirable, lease_is_free};
use conn::Conns;
use read::load;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Savepoint};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The schema version this build writes. A database with a higher version is refused.
pub const SCHEMA_VERSION: i64 = 10;

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
    (10, include_str!("../migrations/0010_task_places.sql")),
];

/// A SQLite state store.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    conns: Arc<Conns>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// `path` as the path of a `file:` URI: every byte but unreserved ones and `/` percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn map(path: &Path, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::FromSqlConversionFailure(_, _, reason) = &e {
        // A stored value this build cannot read: say which row, never guess.
        return StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
    }
    let path = path.to_path_buf();
    let reason = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt { path, reason }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked { path },
        Some(ErrorCode::ReadOnly) => StoreError::Write {
            path,
            reason: "the database file or its folder is read-only".into(),
        },
        Some(ErrorCode::DiskFull) => StoreError::Write {
            path,
            reason: "the disk is full".into(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::Open { path, reason }
        }
        _ => StoreError::Other { path, reason },
    }
}

/// How a store on a file commits its writes. Either way a write returns only once it is
/// committed (and on disk: `synchronous = FULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Commits {
    /// A writer thread commits whatever writes are queued as one transaction, one fsync for all
    /// of them: for a process where many runs write at once (`bulkhead serve`).
    #[default]
    Grouped,
    /// Each write commits on the thread that asks for it, in a transaction of its own: for a
    /// process that drives one run at a time (`bulkhead run`, `resume`, `retry`), whose commits
    /// come one after the other. No hand-off to another thread and back per commit; a write
    /// blocks its caller until it is on disk.
    InPlace,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date. The folder
    /// must exist. A database from a newer Bulkhead is refused and left untouched. Writes are
    /// committed by a writer thread, together when several wait ([`Commits::Grouped`]).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Commits::Grouped)
    }

    /// [`SqliteStore::open`], with writes committed as `commits` says.
    pub fn open_with(path: &Path, commits: Commits) -> Result<SqliteStore, StoreError> {
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    reason: format!("the folder {} does not exist", dir.display()),
                })
            }
            _ => {}
        }
        let conn = connect(path)?;
        let m = |e| map(path, e);
        let version = schema_version(&conn).map_err(m)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        enable_wal(&conn).map_err(m)?;
        migrate(&conn).map_err(m)?;
        // Two readers: one per core of a small machine, so the API reads while a run reads.
        let readers = (0..2)
            .map(|_| connect(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let writes = match commits {
            Commits::Grouped => conn::Writes::Thread(conn::spawn_writer(conn, path.to_path_buf())?),
            Commits::InPlace => conn::Writes::InPlace(Mutex::new(conn)),
        };
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conns: Arc::new(Conns::File {
                writes,
                readers: Arc::new(readers),
            }),
        })
    }

    /// A database in memory only (`--store :memory:`): the same schema, queries and semantics as
    /// a file, nothing kept when the process ends. Named `:memory:` in messages.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let m = |e| map(&path, e);
        // The `memdb` VFS (a file held in this connection's memory), not SQLite's `:memory:`:
        // a `:memory:` database's pages live only in its page cache, which SQLite scans whole
        // at the end of every transaction once it has grown (`pcache1TruncateUnsafe`, 8% of a
        // 100,000-task run in a profile); through a VFS the cache stays bounded.
        // The name is private to this connection (it does not start with `/`).
        let conn = Connection::open_with_flags(
            "file:bulkhead-store?vfs=memdb",
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(m)?;
        // A memdb file is capped at 1 GiB unless told otherwise; `:memory:` was bounded only by
        // the machine's memory, and so is this.
        let mut limit = i64::MAX;
        conn.file_control(
            Some(rusqlite::MAIN_DB),
            rusqlite::FileControl::SizeLimit(&mut limit),
        )
        .map_err(m)?;
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;",
        )
        .map_err(m)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&conn).map_err(m)?;
        Ok(SqliteStore {
            path,
            conns: Arc::new(Conns::Memory(Mutex::new(conn))),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the whole database to the new file `to` (`VACUUM INTO`):
    /// a backup of a file, or a database in memory kept. Refuses a `to` that exists.
    pub fn copy_to(&self, to: &Path) -> Result<(), StoreError> {
        if to.exists() {
            return Err(StoreError::Write {
                path: to.to_path_buf(),
                reason: "the file exists; a copy goes to a new file".into(),
            });
        }
        let vacuum = |conn: &Connection, target: &str| {
            conn.execute("VACUUM INTO ?1", [target])
                .map(|_| ())
                .map_err(|e| map(to, e))
        };
        match &*self.conns {
            // The database in memory is a memdb file, and `VACUUM INTO` writes with the
            // database's own VFS unless a URI names another: the operating system's files.
            Conns::Memory(conn) => vacuum(
                &conn.lock().unwrap_or_else(|e| e.into_inner()),
                &format!("file:{}?vfs=unix", uri_path(to)),
            ),
            Conns::File { .. } => vacuum(&connect(&self.path)?, &to.to_string_lossy()),
        }
    }

    /// Runs `f` as one write (see `conn`): grouped with other writes into one commit on a
    /// file. `f` must not begin a transaction (`tx` makes a savepoint).
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        conn::write(&self.conns, &self.path, f).await
    }

    /// Runs `f` on a read connection, in one read transaction.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        conn::read(&self.conns, &self.path, f).await
    }
}

/// A connection to the file, with the settings every connection of a store has.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| map(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| map(path, e))?;
    // `temp_store = MEMORY` keeps savepoint journals in memory. Every write runs in a
    // savepoint of the group's transaction (`conn`), and SQLite copies each page a savepoint
    // changes into its journal first; once that journal passed 64 KiB it went to a temporary
    // file, and those copies were two thirds of all the writes `serve` made to files
    // (63 `pwrite` calls a 1-task run before, 20 after; docs/performance.md). The journal
    // holds at most the pages of one transaction.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
    .map_err(|e| map(path, e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bulkhead_schema'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM bulkhead_schema",
        [],
        |r| r.get(0),
    )
}

/// Switches to WAL. Changing the journal mode takes a lock that does not wait for the busy
/// handler, so a host that opens the file while another one does retries for a while.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Applies the missing migrations in one write transaction; the version is read again inside
/// it, so two hosts opening a new file at once apply each migration once.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let from = schema_version(conn)?;
        if from >= SCHEMA_VERSION {
            return Ok(());
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bulkhead_schema (version INTEGER NOT NULL)",
        )?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
            if *version == 10 {
                check_before_task_places(conn)?;
            }
            conn.execute_batch(sql)?;
            conn.execute(
                "INSERT INTO bulkhead_schema (version) VALUES (?1)",
                [version],
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Migration 10 files every task and attempt under its run's key and its task's place; a row it
/// could not place (a task of no run, an attempt of no task) would be left behind. Such rows
/// exist only in a database altered by hand or damaged: the migration is refused, naming one.
fn check_before_task_places(conn: &Connection) -> rusqlite::Result<()> {
    let stray: Option<String> = conn
        .one(
            "SELECT 'task `' || t.task || '` of run `' || t.run_id || '`, which does not exist' FROM tasks t
              WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)
             UNION ALL
             SELECT 'attempt ' || a.attempt || ' of task `' || a.task || '` of run `' || a.run_id || '`, a task the run does not have'
               FROM attempts a
              WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.run_id = a.run_id AND t.task = a.task)
             LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match stray {
        None => Ok(()),
        Some(row) => Err(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!(
                "cannot upgrade to schema 10: the database holds a {row} (it was altered or is \
                 damaged); restore a backup, or delete that row, and open it again"
            )
            .into(),
        )),
    }
}

/// Whether a commit moves the lease's expiry (stored `expires`) to `until`: only once it is
/// [`LEASE_EXTEND_STEP_MS`] old, so that a run committing hundreds of batches a second does not
/// rewrite its run row in each of them. After any commit the lease still has at least
/// `LEASE_TTL_MS - LEASE_EXTEND_STEP_MS` to run. A missing expiry is always renewed.
fn renews(expires: Option<i64>, until: i64) -> bool {
    expires.is_none_or(|e| e <= until - LEASE_EXTEND_STEP_MS)
}

/// How stale a lease's expiry may be before a commit moves it (see [`renews`]).
const LEASE_EXTEND_STEP_MS: i64 = 1_000;

/// A savepoint inside the write's transaction: `commit()` keeps its changes, dropping it
/// without rolls them back.
fn tx<'c>(conn: &'c mut Connection, path: &Path) -> Result<Savepoint<'c>, StoreError> {
    conn.savepoint().map_err(|e| map(path, e))
}

fn json(v: &serde_json::Value) -> String {
    v.to_string()
}

/// `(status, lease owner, lease expiry)` of a run.
type LeaseRow = (String, Option<String>, Option<i64>);

fn lease_row(tx: &Connection, run_id: &str) -> rusqlite::Result<Option<LeaseRow>> {
    tx.one(
        "SELECT status, lease_owner, lease_expires_at FROM runs WHERE run_id = ?1",
        [run_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
}

const TRIGGER_COLUMNS: &str =
    "trigger_key, kind, workflow, params, due_at, created_at, run_id, claimed_at, error, cancelled_at";

/// Why cancelling a trigger failed.
enum Cancel {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Cancel {
    fn from(e: rusqlite::Error) -> Self {
        Cancel::Sql(e)
    }
}

/// Cancels the trigger of a run that does not exist yet (see [`Store::request_cancel`]).
fn cancel_trigger(tx: &Connection, run_id: &str, now: i64) -> Result<CancelOutcome, Cancel> {
    let t = tx
        .one(
            &format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE run_id = ?1"),
            [run_id],
            trigger_row,
        )
        .optional()?
        .ok_or_else(|| Cancel::Store(StoreError::UnknownRun(run_id.to_string())))?;
    match t.cancel().map_err(Cancel::Store)? {
        Ok(()) => {
            tx.exec(
                "UPDATE triggers SET cancelled_at = ?2, claimed_at = ?2 WHERE run_id = ?1",
                params![run_id, now],
            )?;
            Ok(CancelOutcome::Cancelled)
        }
        Err(status) => Ok(CancelOutcome::AlreadyEnded(status)),
    }
}

// The three claims of `claim_due` share one statement shape. Its `LIMIT` is
// `CAST(?2 AS INTEGER)`, not `?2`: the SQLite we build (3.54, bundled by rusqlite) plans a
// `LIMIT ?` with the value bound, and so marks the statement to be compiled again whenever a new
// value is bound to it. The claim's limit is the host's free slots, new at nearly every claim,
// and recompiling the three statements took 15% of the writer thread's time under `serve` load
// (docs/performance.md). The cast is evaluated when the statement runs, and the plan does not
// depend on it: each claim names its index.

/// A claim: stamps with `?1` at most `?2` triggers of `index` that pass `filter` (the rows as
/// `t`), oldest due first, and returns them.
fn claim_sql(index: &str, filter: &str) -> String {
    format!(
        "UPDATE triggers SET claimed_at = ?1 WHERE trigger_key IN
           (SELECT trigger_key FROM triggers t INDEXED BY {index}
            WHERE {filter} ORDER BY due_at LIMIT CAST(?2 AS INTEGER))
         RETURNING {TRIGGER_COLUMNS}"
    )
}

/// Stamps orphans again: triggers claimed long ago (`?1 - ?3`) whose run was never created.
fn claim_orphans_sql() -> String {
    claim_sql(
        "triggers_open",
        "fulfilled_at IS NULL AND claimed_at IS NOT NULL AND claimed_at < ?1 - ?3
         AND error IS NULL AND cancelled_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)",
    )
}

/// Claims the due triggers of one capped workflow (`?3`).
fn claim_capped_sql() -> String {
    claim_sql(
        "triggers_open_by_workflow",
        "fulfilled_at IS NULL AND workflow = ?3 AND claimed_at IS NULL AND due_at <= ?1",
    )
}

/// Claims the due triggers of every workflow but the `capped` ones, named by `?3` onwards.
fn claim_others_sql(capped: usize) -> String {
    let names = (0..capped)
        .map(|i| format!("?{}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    claim_sql(
        "triggers_open",
        &format!(
            "fulfilled_at IS NULL AND claimed_at IS NULL AND due_at <= ?1
             AND workflow NOT IN ({names})"
        ),
    )
}

fn trigger_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Trigger> {
    let key: String = r.get(0)?;
    let row = format!("trigger `{key}`");
    let kind: String = r.get(1)?;
    Ok(Trigger {
        kind: known(TriggerKind::parse(&kind), 1, &row, "trigger kind", &kind)?,
        workflow: r.get(2)?,
        params: json_column(r.get(3)?, 3, &row, "params")?.unwrap_or(serde_json::Value::Null),
        key,
        due_at: r.get(4)?,
        created_at: r.get(5)?,
        run_id: r.get(6)?,
        claimed_at: r.get(7)?,
        error: r.get(8)?,
        cancelled_at: r.get(9)?,
    })
}

/// A stored name, parsed; a name this build does not know is an error naming the row, never a
/// default (the database was altered or is damaged, and guessing would rewrite history).
fn known<T>(
    parsed: Option<T>,
    column: usize,
    row: &str,
    what: &str,
    value: &str,
) -> rusqlite::Result<T> {
    parsed.ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("{row}: unknown {what} `{value}` (the database was altered or is damaged)")
                .into(),
        )
    })
}

/// A JSON column: absent is `None`; text that is not JSON is an error naming the row.
fn json_column(
    text: Option<String>,
    column: usize,
    row: &str,
    what: &str,
) -> rusqlite::Result<Option<serde_json::Value>> {
    let Some(text) = text else { return Ok(None) };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("{row}: {what} is not JSON ({e}) (the database was altered or is damaged)")
                .into(),
        )
    })
}

/// An output column: checked to be one JSON value, kept as its text.
fn output_column(
    text: Option<String>,
    column: usize,
    row: &str,
) -> rusqlite::Result<Option<OutputJson>> {
    let Some(text) = text else { return Ok(None) };
    OutputJson::parse(text.into_bytes()).map(Some).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("{row}: output is not JSON ({e}) (the database was altered or is damaged)")
                .into(),
        )
    })
}

fn err3(
    kind: Option<String>,
    message: Option<String>,
    code: Option<i32>,
) -> Option<(String, String, Option<i32>)> {
    kind.map(|k| (k, message.unwrap_or_default(), code))
}

/// Statements run through the connection's cache of prepared statements: a statement is
/// parsed and planned once per connection, not at every call (parsing was about 5% of a
/// `serve` host's samples under load, `perf`).
pub(crate) trait Cached {
    /// `Connection::execute`, prepared once.
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// `Connection::query_row`, prepared once.
    fn one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// How many prepared statements a connection keeps: every statement of the store fits, so
/// that none is evicted and parsed again (rusqlite keeps 16 by default).
const STATEMENT_CACHE: usize = 96;

/// The key under which run `run_id`'s tasks and attempts are filed (schema 10):
/// [`StoreError::UnknownRun`] if there is no such run, and an error naming the run if its row
/// has no key (a database altered by hand: its tasks could not be found, and reading it as a
/// run without tasks would be a lie).
fn run_key(conn: &Connection, path: &Path, run_id: &str) -> Result<i64, StoreError> {
    let key: Option<Option<i64>> = conn
        .one(
            "SELECT run_key FROM runs WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| map(path, e))?;
    match key {
        None => Err(StoreError::UnknownRun(run_id.to_string())),
        Some(None) => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: no_run_key(run_id),
        }),
        Some(Some(key)) => Ok(key),
    }
}

/// What is wrong with a run whose row has no `run_key`.
fn no_run_key(run_id: &str) -> String {
    format!("run `{run_id}` has no run_key, so its tasks cannot be found (the database was altered or is damaged)")
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_run_with(
        &self,
        run: NewRun,
        first: Vec<Transition>,
    ) -> Result<Lease, StoreError> {
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            // The run's key is given here and returned: its tasks are filed under it below.
            let key: i64 = tx.one(
                "INSERT INTO runs (run_id, workflow, workflow_hash, workflow_file, params, status, created_at, lease_owner, lease_expires_at, lease_generation, run_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, (SELECT coalesce(max(run_key), 0) + 1 FROM runs))
                 RETURNING run_key",
                params![
                    run.run_id,
                    run.workflow,
                    run.workflow_hash,
                    run.workflow_file.to_string_lossy(),
                    json(&run.params),
                    run.created_at,
                    run.owner,
                    run.lease_expires_at,
                    Lease::FIRST
                ],
                |r| r.get(0),
            )
            .map_err(|e| match e {
                // The run id's uniqueness only: any other refusal (a trigger a user added,
                // say) is reported as itself.
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == ErrorCode::ConstraintViolation
                        && matches!(
                            f.extended_code,
                            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        ) =>
                {
                    StoreError::Conflict(format!(
                        "run `{}` already exists; a run id is used once",
                        run.run_id
                    ))
                }
                e => map(path, e),
            })?;
            // Written once, apart from the run's row, which every commit updates.
            tx.exec(
                "INSERT INTO run_definitions (run_id, workflow_yaml, workflow_spec) VALUES (?1, ?2, ?3)",
                params![run.run_id, run.workflow_yaml, run.workflow_spec],
            )
            .map_err(m)?;
            for p in &run.plugins {
                tx.exec(
                    "INSERT INTO run_plugins (run_id, reference, hash) VALUES (?1, ?2, ?3)",
                    params![run.run_id, p.reference, p.hash],
                )
                .map_err(m)?;
            }
            // The trigger that asked for this run (if one did) is no longer open.
            tx.exec(
                "UPDATE triggers SET fulfilled_at = ?2 WHERE run_id = ?1 AND fulfilled_at IS NULL",
                params![run.run_id, run.created_at],
            )
            .map_err(m)?;
            let mut insert = tx
                .prepare_cached("INSERT INTO tasks (run_key, position, task, status) VALUES (?1, ?2, ?3, 'pending')")
                .map_err(m)?;
            for (i, task) in run.tasks.iter().enumerate() {
                insert.execute(params![key, i as i64, task]).map_err(m)?;
            }
            drop(insert);
            write::apply(&tx, &run.run_id, key, &run.owner, &first).map_err(m)?;
            tx.commit().map_err(m)?;
            Ok(Lease {
                owner: run.owner,
                generation: Lease::FIRST,
            })
        })
        .await
    }

    async fn commit(
        &self,
        run_id: &str,
        lease: &Lease,
        batch: Vec<Transition>,
    ) -> Result<Commit, StoreError> {
        let (run_id, lease) = (run_id.to_string(), lease.clone());
        // No savepoint of its own: the write's savepoint (`conn::in_savepoint`) already rolls
        // every statement back if one fails.
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let row: Option<(Option<String>, i64, i64, Option<i64>, Option<i64>)> = conn
                .prepare_cached("SELECT lease_owner, cancel_requested, lease_generation, lease_expires_at, run_key FROM runs WHERE run_id = ?1")
                .and_then(|mut s| {
                    s.query_row([&run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                        .optional()
                })
                .map_err(m)?;
            let Some((holder, cancel, generation, expires, key)) = row else {
                return Err(StoreError::UnknownRun(run_id));
            };
            if holder.as_deref() != Some(lease.owner.as_str()) || generation != lease.generation {
                return Err(StoreError::LostLease(run_id));
            }
            let Some(key) = key else {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    reason: no_run_key(&run_id),
                });
            };
            write::apply(conn, &run_id, key, &lease.owner, &batch).map_err(m)?;
            let ended = batch
                .iter()
                .any(|t| matches!(t, Transition::RunEnded { .. }));
            let until = now_ms() + LEASE_TTL_MS;
            if !ended && renews(expires, until) {
                conn.prepare_cached("UPDATE runs SET lease_expires_at = ?2 WHERE run_id = ?1")
                    .and_then(|mut s| s.execute(params![run_id, until]))
                    .map_err(m)?;
            }
            Ok(Commit {
                cancel_requested: cancel != 0,
            })
        })
        .await
    }

    async fn acquire(
        &self,
        run_id: &str,
        owner: &Owner,
        now: i64,
        ttl: i64,
    ) -> Result<Lease, StoreError> {
        let (run_id, owner) = (run_id.to_string(), owner.clone());
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            let (status, holder, until) = lease_row(&tx, &run_id).map_err(m)?.ok_or(StoreError::UnknownRun(run_id.clone()))?;
            check_acquirable(&run_id, &status, holder.as_deref(), until, &owner, now)?;
            let key = run_key(&tx, path, &run_id)?;
            tx.exec(
                "UPDATE tasks SET uncounted = uncounted + (SELECT count(*) FROM attempts a
                   WHERE a.run_key = tasks.run_key AND a.position = tasks.position AND a.status = 'running')
                 WHERE run_key = ?1",
                [key],
            )
            .map_err(m)?;
            tx.exec(
                "UPDATE attempts SET status = 'interrupted', finished_at = ?2
                 WHERE run_key = ?1 AND status = 'running'",
                params![key, now],
            )
            .map_err(m)?;
            let generation: i64 = tx
                .one(
                    "UPDATE runs SET lease_owner = ?2, lease_expires_at = ?3, status = 'running', cancel_requested = 0,
                            lease_generation = lease_generation + 1
                     WHERE run_id = ?1 RETURNING lease_generation",
                    params![run_id, owner.0, now + ttl],
                    |r| r.get(0),
                )
                .map_err(m)?;
            tx.commit().map_err(m)?;
            Ok(Lease {
                owner: owner.0,
                generation,
            })
        })
        .await
    }

    async fn release(&self, run_id: &str, lease: &Lease) -> Result<(), StoreError> {
        let (run_id, lease) = (run_id.to_string(), lease.clone());
        self.write(move |conn, path| {
            conn.exec(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE run_id = ?1 AND lease_owner = ?2 AND lease_generation = ?3",
                params![run_id, lease.owner, lease.generation],
            )
            .map(|_| ())
            .map_err(|e| map(path, e))
        })
        .await
    }

    async fn load(&self, run_id: &str) -> Result<StoredRun, StoreError> {
        let run_id = run_id.to_string();
        self.read(move |conn, path| {
            load(conn, &run_id)
                .map_err(|e| map(path, e))?
                .ok_or(StoreError::UnknownRun(run_id))
        })
        .await
    }

    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn, path| {
            let limit = if filter.limit == 0 {
                i64::MAX
            } else {
                filter.limit as i64
            };
            // Runs, and the triggers whose run does not exist (yet, or ever).
            let mut stmt = conn
                .prepare_cached(
                    // Each side is ordered and cut on its own (the runs side walks the primary
                    // key backwards from the cursor), so a page reads about `limit` rows of
                    // each, not the whole history.
                    "WITH page AS (SELECT run_id, workflow, status, started_at, finished_at, due_at FROM (
                       SELECT * FROM (
                         SELECT r.run_id, r.workflow, r.status, r.created_at AS started_at, r.finished_at, t.due_at
                           FROM runs r LEFT JOIN triggers t ON t.run_id = r.run_id
                          WHERE (?1 IS NULL OR r.workflow = ?1) AND (?2 IS NULL OR r.status = ?2)
                            AND (?4 IS NULL OR r.run_id < ?4)
                          ORDER BY r.run_id DESC LIMIT ?3)
                       UNION ALL
                       SELECT * FROM (
                         SELECT * FROM (
                           SELECT t.run_id, t.workflow,
                                  CASE WHEN t.cancelled_at IS NOT NULL THEN 'cancelled'
                                       WHEN t.error IS NOT NULL THEN 'failed' ELSE 'pending' END AS status,
                                  NULL AS started_at,
                                  coalesce(t.cancelled_at, CASE WHEN t.error IS NOT NULL THEN t.claimed_at END) AS finished_at,
                                  t.due_at
                             FROM triggers t INDEXED BY triggers_open_by_run
                            WHERE t.fulfilled_at IS NULL
                              AND (t.claimed_at IS NULL OR t.cancelled_at IS NOT NULL OR t.error IS NOT NULL)
                              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)
                              AND (?1 IS NULL OR t.workflow = ?1) AND (?4 IS NULL OR t.run_id < ?4))
                          WHERE (?2 IS NULL OR status = ?2)
                          ORDER BY run_id DESC LIMIT ?3))
                     ORDER BY run_id DESC LIMIT ?3),
                     -- Progress of the page's runs only: counted by the primary keys.
                     keys AS (SELECT r.run_id, r.run_key FROM runs r WHERE r.run_id IN (SELECT run_id FROM page)),
                     prog AS (SELECT keys.run_id, count(*) AS n,
                                     sum(k.status = 'succeeded') AS ok, sum(k.status = 'failed') AS bad,
                                     sum(k.status = 'skipped') AS skip, sum(k.status = 'cancelled') AS gone
                                FROM keys JOIN tasks k ON k.run_key = keys.run_key GROUP BY keys.run_id),
                     busy AS (SELECT keys.run_id, count(*) AS n FROM keys JOIN attempts a ON a.run_key = keys.run_key
                               WHERE a.status = 'running' GROUP BY keys.run_id)
                     SELECT page.run_id, page.workflow, page.status, page.started_at, page.finished_at, page.due_at,
                            coalesce(prog.n, 0), coalesce(prog.ok, 0), coalesce(prog.bad, 0),
                            coalesce(prog.skip, 0), coalesce(prog.gone, 0), coalesce(busy.n, 0)
                       FROM page LEFT JOIN prog ON prog.run_id = page.run_id LEFT JOIN busy ON busy.run_id = page.run_id
                      ORDER BY page.run_id DESC",
                )
                .map_err(|e| map(path, e))?;
            let rows = stmt
                .query_map(
                    params![
                        filter.workflow,
                        filter.status.map(RunStatus::as_str),
                        limit,
                        filter.before
                    ],
                    |r| {
                        let run_id: String = r.get(0)?;
                        let status: String = r.get(2)?;
                        let row = format!("run `{run_id}`");
                        Ok(RunSummary {
                            status: known(RunStatus::parse(&status), 2, &row, "run status", &status)?,
                            run_id,
                            workflow: r.get(1)?,
                            started_at: r.get::<_, Option<i64>>(3)?.map(rfc3339),
                            finished_at: r.get::<_, Option<i64>>(4)?.map(rfc3339),
                            due_at: r.get::<_, Option<i64>>(5)?.map(rfc3339),
                            progress: RunProgress::of_counts(
                                r.get(6)?,
                                r.get(7)?,
                                r.get(8)?,
                                r.get(9)?,
                                r.get(10)?,
                                r.get(11)?,
                            ),
                        })
                    },
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| map(path, e))?;
            Ok(rows)
        })
        .await
    }

    async fn logs(
        &self,
        run_id: &str,
        task: Option<&str>,
        attempt: Option<u32>,
    ) -> Result<Vec<AttemptLog>, StoreError> {
        let (run_id, task) = (run_id.to_string(), task.map(str::to_string));
        self.read(move |conn, path| {
            let m = |e| map(path, e);
            let key = run_key(conn, path, &run_id)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT t.task, a.attempt, coalesce(a.log, '') FROM tasks t JOIN attempts a ON a.run_key = t.run_key AND a.position = t.position
                     WHERE t.run_key = ?1 AND (?2 IS NULL OR t.task = ?2) AND (?3 IS NULL OR a.attempt = ?3)
                     ORDER BY t.position, a.attempt",
                )
                .map_err(m)?;
            let rows = stmt
                .query_map(params![key, task, attempt], |r| {
                    Ok(AttemptLog {
                        task: r.get(0)?,
                        attempt: r.get(1)?,
                        log: r.get(2)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(m)?;
            Ok(rows)
        })
        .await
    }

    async fn task_results(
        &self,
        run_id: &str,
        from: usize,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<TaskResult>, StoreError> {
        let run_id = run_id.to_string();
        self.read(move |conn, path| {
            let m = |e| map(path, e);
            let key = run_key(conn, path, &run_id)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT t.task, t.output, (SELECT coalesce(a.log, '') FROM attempts a
                                               WHERE a.run_key = t.run_key AND a.position = t.position
                                               ORDER BY a.attempt DESC LIMIT 1)
                     FROM tasks t WHERE t.run_key = ?1 AND t.position >= ?2
                     ORDER BY t.position LIMIT ?3",
                )
                .map_err(m)?;
            let rows = stmt
                .query_map(
                    params![key, from as i64, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?)),
                )
                .map_err(m)?;
            let (mut out, mut bytes) = (Vec::new(), 0usize);
            for row in rows {
                if !out.is_empty() && bytes >= max_bytes {
                    // Rows are read one at a time: the ones after are never loaded.
                    break;
                }
                let (task, output, log) = row.map_err(m)?;
                bytes += output.as_ref().map_or(0, String::len) + log.as_ref().map_or(0, String::len);
                let output = match output {
                    None => None,
                    Some(text) => Some(OutputJson::parse(text.into_bytes()).map_err(|e| StoreError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!("the stored output of task `{task}` of run `{run_id}` is not JSON: {e}"),
                    })?),
                };
                out.push(TaskResult {
                    task,
                    output,
                    log: log.unwrap_or_default(),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn unfinished(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.read(move |conn, path| {
            let me = Owner::new();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT run_id, status, lease_owner, lease_expires_at FROM runs
                     WHERE status IN ('pending', 'running', 'interrupted') ORDER BY created_at, run_id",
                )
                .map_err(|e| map(path, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<i64>>(3)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| map(path, e))?;
            Ok(rows
                .into_iter()
                .filter(|(_, status, holder, until)| lease_is_free(status, holder.as_deref(), *until, &me, now))
                .map(|(id, ..)| id)
                .collect())
        })
        .await
    }

    async fn request_cancel(&self, run_id: &str, now: i64) -> Result<CancelOutcome, StoreError> {
        let run_id = run_id.to_string();
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            let Some((status, holder, until)) = lease_row(&tx, &run_id).map_err(m)? else {
                let status = cancel_trigger(&tx, &run_id, now).map_err(|e| match e {
                    Cancel::Sql(e) => m(e),
                    Cancel::Store(e) => e,
                })?;
                tx.commit().map_err(m)?;
                return Ok(status);
            };
            let status = RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("run `{run_id}` has the unknown status `{status}`"),
            })?;
            if status.is_final() {
                return Ok(CancelOutcome::AlreadyEnded(status));
            }
            if !lease_is_free(status.as_str(), holder.as_deref(), until, &Owner::new(), now) {
                tx.exec("UPDATE runs SET cancel_requested = 1 WHERE run_id = ?1", [&run_id]).map_err(m)?;
                tx.commit().map_err(m)?;
                return Ok(CancelOutcome::Asked);
            }
            let key = run_key(&tx, path, &run_id)?;
            tx.exec(
                "UPDATE attempts SET status = 'interrupted', finished_at = ?2
                 WHERE run_key = ?1 AND status = 'running'",
                params![key, now],
            )
            .map_err(m)?;
            tx.exec(
                "UPDATE tasks SET status = 'cancelled', error_kind = 'cancelled', error_message = 'the run was cancelled'
                 WHERE run_key = ?1 AND status = 'pending'",
                [key],
            )
            .map_err(m)?;
            tx.exec(
                "UPDATE runs SET status = 'cancelled', finished_at = ?2, lease_owner = NULL, lease_expires_at = NULL WHERE run_id = ?1",
                params![run_id, now],
            )
            .map_err(m)?;
            tx.commit().map_err(m)?;
            Ok(CancelOutcome::Cancelled)
        })
        .await
    }

    async fn reset_tasks(&self, run_id: &str, tasks: &[String]) -> Result<(), StoreError> {
        let (run_id, tasks) = (run_id.to_string(), tasks.to_vec());
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            let key = run_key(&tx, path, &run_id)?;
            for task in &tasks {
                tx.exec(
                    "UPDATE tasks SET status = 'pending', output = NULL, error_kind = NULL, error_message = NULL,
                     exit_code = NULL,
                     attempts = max(attempts, coalesce((SELECT max(a.attempt) FROM attempts a WHERE a.run_key = tasks.run_key AND a.position = tasks.position), 0)),
                     uncounted = max(attempts, coalesce((SELECT max(a.attempt) FROM attempts a WHERE a.run_key = tasks.run_key AND a.position = tasks.position), 0))
                     WHERE run_key = ?1 AND task = ?2",
                    params![key, task],
                )
                .map_err(m)?;
            }
            tx.exec(
                "UPDATE runs SET status = 'interrupted', finished_at = NULL, cancel_requested = 0 WHERE run_id = ?1",
                [&run_id],
            )
            .map_err(m)?;
            tx.commit().map_err(m)
        })
        .await
    }

    async fn gc(&self, before: i64) -> Result<Vec<String>, StoreError> {
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            let mut ids: Vec<String> = tx
                .prepare_cached("SELECT run_id FROM runs WHERE created_at < ?1 AND status IN ('succeeded', 'failed', 'cancelled')")
                .and_then(|mut s| s.query_map([before], |r| r.get(0))?.collect())
                .map_err(m)?;
            // Triggers go with their runs (a schedule whose newest fire is collected owes nothing
            // from before: it fires on, never twice).
            tx.exec(
                "DELETE FROM triggers WHERE run_id IN
                   (SELECT run_id FROM runs WHERE created_at < ?1 AND status IN ('succeeded', 'failed', 'cancelled'))",
                [before],
            )
            .map_err(m)?;
            tx.exec(
                "DELETE FROM runs WHERE created_at < ?1 AND status IN ('succeeded', 'failed', 'cancelled')",
                [before],
            )
            .map_err(m)?;
            // Runs that never started: cancelled before they were due, or failed to start.
            let never: Vec<String> = tx
                .prepare_cached(
                    "SELECT run_id FROM triggers t INDEXED BY triggers_open_by_run
                      WHERE fulfilled_at IS NULL AND created_at < ?1 AND (cancelled_at IS NOT NULL OR error IS NOT NULL)
                       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id)",
                )
                .and_then(|mut s| s.query_map([before], |r| r.get(0))?.collect())
                .map_err(m)?;
            tx.exec(
                "DELETE FROM triggers INDEXED BY triggers_open_by_run
                  WHERE fulfilled_at IS NULL AND created_at < ?1 AND (cancelled_at IS NOT NULL OR error IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = triggers.run_id)",
                [before],
            )
            .map_err(m)?;
            tx.commit().map_err(m)?;
            ids.extend(never);
            ids.sort();
            Ok(ids)
        })
        .await
    }

    async fn plugin_hashes_in_use(&self) -> Result<Vec<String>, StoreError> {
        self.read(move |conn, path| {
            conn.prepare_cached("SELECT DISTINCT hash FROM run_plugins ORDER BY hash")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(|e| map(path, e))
        })
        .await
    }

    async fn add_trigger(&self, t: NewTrigger) -> Result<bool, StoreError> {
        self.write(move |conn, path| {
            conn.exec(
                "INSERT INTO triggers (trigger_key, kind, workflow, params, due_at, created_at, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (trigger_key) DO NOTHING",
                params![t.key(), t.kind.as_str(), t.workflow, json(&t.params), t.due_at, t.created_at, t.run_id],
            )
            .map(|n| n == 1)
            .map_err(|e| map(path, e))
        })
        .await
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        caps: &RunCaps,
    ) -> Result<Vec<Trigger>, StoreError> {
        // Each claim is one conditional UPDATE ... RETURNING: a row is stamped by exactly one
        // caller, never read first and written after (two hosts cannot both take it). An
        // orphan (claimed long ago, its run never created) is stamped again as it is taken,
        // so it is handed out once more, not at every tick. The whole claim is one write
        // transaction (BEGIN IMMEDIATE): a capped workflow's count cannot change under it.
        let caps: Vec<(String, u32)> = caps.iter().map(|(w, c)| (w.clone(), *c)).collect();
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            let mut orphans: Vec<Trigger> = tx
                .prepare_cached(&claim_orphans_sql())
                .and_then(|mut s| s.query_map(params![now, limit as i64, ORPHAN_AFTER_MS], trigger_row)?.collect())
                .map_err(m)?;
            let mut claimed: Vec<Trigger> = Vec::new();
            for (workflow, cap) in &caps {
                let room = limit.saturating_sub(claimed.len());
                if room == 0 {
                    break;
                }
                let active: i64 = tx
                    .prepare_cached(
                        "SELECT (SELECT count(*) FROM runs WHERE workflow = ?1 AND status IN ('pending', 'running', 'interrupted'))
                              + (SELECT count(*) FROM triggers t INDEXED BY triggers_open_by_workflow
                                  WHERE fulfilled_at IS NULL AND workflow = ?1 AND claimed_at >= ?2 - ?3
                                   AND error IS NULL AND cancelled_at IS NULL
                                   AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id))",
                    )
                    .and_then(|mut s| s.query_row(params![workflow, now, CLAIMS_IN_FLIGHT_MS], |r| r.get(0)))
                    .map_err(m)?;
                let free = (i64::from(*cap) - active).clamp(0, room as i64);
                if free == 0 {
                    continue;
                }
                let mut some: Vec<Trigger> = tx
                    .prepare_cached(&claim_capped_sql())
                    .and_then(|mut s| s.query_map(params![now, free, workflow], trigger_row)?.collect())
                    .map_err(m)?;
                claimed.append(&mut some);
            }
            let room = limit.saturating_sub(claimed.len());
            if room > 0 {
                // Every other workflow: the capped ones are excluded by name.
                let sql = claim_others_sql(caps.len());
                let mut values: Vec<rusqlite::types::Value> = vec![now.into(), (room as i64).into()];
                values.extend(caps.iter().map(|(w, _)| w.clone().into()));
                let mut some: Vec<Trigger> = tx
                    .prepare_cached(&sql)
                    .and_then(|mut s| s.query_map(rusqlite::params_from_iter(values), trigger_row)?.collect())
                    .map_err(m)?;
                claimed.append(&mut some);
            }
            tx.commit().map_err(m)?;
            // RETURNING gives rows in no promised order: oldest due first, as documented.
            claimed.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
            orphans.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
            claimed.extend(orphans);
            Ok(claimed)
        })
        .await
    }

    async fn fail_trigger(&self, key: &str, error: &str) -> Result<(), StoreError> {
        let (key, error) = (key.to_string(), error.to_string());
        self.write(move |conn, path| {
            conn.exec(
                "UPDATE triggers SET error = ?2 WHERE trigger_key = ?1",
                params![key, error],
            )
            .map(|_| ())
            .map_err(|e| map(path, e))
        })
        .await
    }

    async fn trigger_of_run(&self, run_id: &str) -> Result<Option<Trigger>, StoreError> {
        let run_id = run_id.to_string();
        self.read(move |conn, path| {
            conn.one(
                &format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE run_id = ?1"),
                [run_id],
                trigger_row,
            )
            .optional()
            .map_err(|e| map(path, e))
        })
        .await
    }

    async fn pending_triggers(&self) -> Result<u64, StoreError> {
        self.read(move |conn, path| {
            conn.one(
                // Cancelled and failed triggers are claimed too, and an unclaimed trigger is
                // always open: the partial index of open triggers holds every row counted.
                "SELECT count(*) FROM triggers INDEXED BY triggers_open WHERE fulfilled_at IS NULL AND claimed_at IS NULL",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| map(path, e))
        })
        .await
    }

    async fn last_cron_fire(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        let workflow = workflow.to_string();
        self.read(move |conn, path| {
            conn.one(
                "SELECT max(due_at) FROM triggers WHERE workflow = ?1 AND kind = 'cron'",
                [workflow],
                |r| r.get(0),
            )
            .map_err(|e| map(path, e))
        })
        .await
    }

    async fn heartbeat(&self, beat: &HostBeat) -> Result<(), StoreError> {
        let beat = beat.clone();
        self.write(move |conn, path| {
            let m = |e| map(path, e);
            let tx = tx(conn, path)?;
            tx.exec(
                "INSERT INTO hosts (owner, started_at, last_seen, slots, slots_in_use, runs) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (owner) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen,
                   slots = excluded.slots, slots_in_use = excluded.slots_in_use, runs = excluded.runs",
                params![beat.owner, beat.started_at, beat.last_seen, beat.slots, beat.slots_in_use, beat.runs],
            )
            .map_err(m)?;
            tx.exec(
                "DELETE FROM hosts WHERE last_seen < ?1",
                [beat.last_seen - HOST_FORGOTTEN_MS],
            )
            .map_err(m)?;
            tx.commit().map_err(m)
        })
        .await
    }

    async fn hosts(&self, now: i64, within: i64) -> Result<Vec<HostBeat>, StoreError> {
        self.read(move |conn, path| {
            conn.prepare_cached(
                "SELECT owner, started_at, last_seen, slots, slots_in_use, runs FROM hosts
                 WHERE last_seen >= ?1 ORDER BY owner",
            )
            .and_then(|mut s| {
                s.query_map([now - within], |r| {
                    Ok(HostBeat {
                        owner: r.get(0)?,
                        started_at: r.get(1)?,
                        last_seen: r.get(2)?,
                        slots: r.get(3)?,
                        slots_in_use: r.get(4)?,
                        runs: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| map(path, e))
        })
        .await
    }
}
