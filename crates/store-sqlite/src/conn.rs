//! Connections and group commit.
//!
//! A file has one writer thread that owns the write connection. Writes from every run queue up
//! there, and the writer commits whatever is queued as one transaction: each write in its own
//! savepoint (a failing write rolls back alone), one `COMMIT` and so one fsync for all of them,
//! then every caller gets its answer. A commit is still on disk before any caller hears of it;
//! under load, the cost of the fsync is shared instead of paid once per write. Reads go to
//! separate connections (WAL lets them run beside the writer), each in a read transaction so a
//! read sees one committed state.
//!
//! A process that drives one run at a time (`bulkhead run`) can have its writes commit in place
//! instead ([`Writes::InPlace`]): on the calling thread, one transaction each, the same
//! `BEGIN IMMEDIATE`, savepoint and `COMMIT` (and fsync) as a group of one. A run's commits come
//! one after the other anyway, and handing each to the writer thread and its answer back cost
//! more than the commit (a 10,000-task run 233 -> 168 ms, docs/performance.md).
//!
//! A database in memory has one connection and never waits for a disk: statements run in place,
//! each write in a savepoint of its own that is also its transaction.

use super::map;
use bulkhead_core::store::StoreError;
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Writes committed together at most (a bound on one transaction's size and latency).
const MAX_GROUP: usize = 512;

/// The connections of one store.
pub(super) enum Conns {
    /// `:memory:`: one connection, statements in place.
    Memory(Mutex<Connection>),
    /// A file: its writes, and a few read connections.
    File {
        writes: Writes,
        /// At least one.
        readers: Arc<Vec<Mutex<Connection>>>,
    },
}

/// How a file's writes reach its write connection.
pub(super) enum Writes {
    /// Queued for the writer thread, which commits whatever is queued as one transaction.
    Thread(Writer),
    /// Committed on the calling thread, one write per transaction.
    InPlace(Mutex<Connection>),
}

/// The writer thread and its queue. Dropping it lets the queue drain, then waits for the
/// thread, so the write connection is closed (and the WAL checkpointed into the file) when the
/// store goes away.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A write queued for the writer thread.
pub(super) trait Job: Send {
    /// Does the work inside the group's open transaction; gives what to answer once the
    /// commit's outcome is known.
    fn run(self: Box<Self>, conn: &mut Connection, path: &Path) -> Box<dyn Answer>;
    /// Answers without running: the group's transaction could not begin.
    fn refuse(self: Box<Self>, error: StoreError);
}

/// A write's result, held until its group commits.
pub(super) trait Answer: Send {
    fn send(self: Box<Self>, commit: Result<(), &StoreError>);
}

type Reply<T> = tokio::sync::oneshot::Sender<Result<T, StoreError>>;

struct Pending<T, F> {
    work: F,
    reply: Reply<T>,
}

struct Ready<T> {
    result: Result<T, StoreError>,
    reply: Reply<T>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection, &Path) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection, path: &Path) -> Box<dyn Answer> {
        let this = *self;
        Box::new(Ready {
            result: in_savepoint(conn, path, this.work),
            reply: this.reply,
        })
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send> Answer for Ready<T> {
    fn send(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match commit {
            Ok(()) => self.result,
            // The work was done in a transaction that did not commit: none of it happened.
            Err(e) => Err(e.clone()),
        };
        let _ = self.reply.send(result);
    }
}

/// Runs `work` in a savepoint: kept if it succeeds, rolled back if it fails or panics.
fn in_savepoint<T>(
    conn: &mut Connection,
    path: &Path,
    work: impl FnOnce(&mut Connection, &Path) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    control(conn, "SAVEPOINT bulkhead_write").map_err(|e| map(path, e))?;
    let result =
        std::panic::catch_unwind(AssertUnwindSafe(|| work(conn, path))).unwrap_or_else(|_| {
            Err(StoreError::Other {
                path: path.to_path_buf(),
                reason: "a store write panicked; it was rolled back".into(),
            })
        });
    let end = match result {
        Ok(_) => control(conn, "RELEASE bulkhead_write"),
        Err(_) => control(conn, "ROLLBACK TO bulkhead_write")
            .and_then(|()| control(conn, "RELEASE bulkhead_write")),
    };
    end.map_err(|e| map(path, e))?;
    result
}

/// Runs a statement that controls the transaction (`BEGIN`, `COMMIT`, a savepoint). Prepared
/// once per connection and kept: every write runs several, and parsing them again each time
/// was a visible share of a run in memory, where writes are many and small.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// One transaction around `jobs`: `BEGIN IMMEDIATE`, each job, `COMMIT`, then the answers.
fn commit_group(conn: &mut Connection, path: &Path, jobs: Vec<Box<dyn Job>>) {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let error = map(path, e);
        for job in jobs {
            job.refuse(error.clone());
        }
        return;
    }
    let mut answers: Vec<Box<dyn Answer>> = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        answers.push(job.run(conn, path));
        if conn.is_autocommit() {
            // SQLite ended the transaction itself (a full disk or an I/O error rolls it back):
            // nothing done so far is kept, so no write of the group may be answered as done.
            let error = StoreError::Write {
                path: path.to_path_buf(),
                reason: "the database rolled the transaction back (is the disk full?)".into(),
            };
            for answer in answers {
                answer.send(Err(&error));
            }
            for job in jobs {
                job.refuse(error.clone());
            }
            return;
        }
    }
    let commit = control(conn, "COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        map(path, e)
    });
    for answer in answers {
        answer.send(commit.as_ref().map(|_| ()));
    }
}

/// Starts the writer thread of a file; it ends when the store is dropped.
pub(super) fn spawn_writer(mut conn: Connection, path: PathBuf) -> Result<Writer, StoreError> {
    let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
    let error_path = path.clone();
    std::thread::Builder::new()
        .name("bulkhead-sqlite-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                commit_group(&mut conn, &path, group);
            }
        })
        .map(|thread| Writer {
            jobs: Some(tx),
            thread: Some(thread),
        })
        .map_err(|e| StoreError::Open {
            path: error_path,
            reason: format!("cannot start the store's writer thread: {e}"),
        })
}

/// Runs `f` as one write: grouped with others on a file, in place in memory. `f` must not
/// begin or commit a transaction itself (a savepoint, as `super::tx` makes, is fine).
pub(super) async fn write<T, F>(conns: &Arc<Conns>, path: &Path, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection, &Path) -> Result<T, StoreError> + Send + 'static,
{
    match &**conns {
        Conns::Memory(conn) => {
            // Outside a transaction, the savepoint is the transaction: its `RELEASE` commits.
            // One connection owns the database, so nothing can hold a lock it would wait for.
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            let result = in_savepoint(&mut guard, path, f);
            if !guard.is_autocommit() {
                // The release (the commit) failed: end the transaction, nothing of it kept,
                // so that the next write does not nest inside it.
                let _ = guard.execute_batch("ROLLBACK");
                return Err(result.err().unwrap_or_else(|| StoreError::Write {
                    path: path.to_path_buf(),
                    reason: "the write could not be committed".into(),
                }));
            }
            result
        }
        Conns::File {
            writes: Writes::InPlace(conn),
            ..
        } => {
            // A group of one, committed here: the answer is sent before `commit_group` returns.
            let (reply, mut answer) = tokio::sync::oneshot::channel();
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            commit_group(&mut guard, path, vec![Box::new(Pending { work: f, reply })]);
            drop(guard);
            answer.try_recv().map_err(|_| StoreError::Other {
                path: path.to_path_buf(),
                reason: "a write was not answered".into(),
            })?
        }
        Conns::File {
            writes: Writes::Thread(writer),
            ..
        } => {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let gone = || StoreError::Other {
                path: path.to_path_buf(),
                reason: "the store's writer thread has stopped".into(),
            };
            writer
                .jobs
                .as_ref()
                .ok_or_else(gone)?
                .send(Box::new(Pending { work: f, reply }))
                .map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        }
    }
}

/// Runs `f` on a read connection in a read transaction (one committed state throughout): on a
/// blocking thread for a file, in place in memory.
pub(super) async fn read<T, F>(conns: &Arc<Conns>, path: &Path, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
{
    let in_transaction = move |conn: &mut Connection, path: &Path| {
        let tx = conn.transaction().map_err(|e| map(path, e))?;
        f(&tx, path)
        // Dropping the read transaction ends it; it wrote nothing.
    };
    match &**conns {
        Conns::Memory(conn) => {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            in_transaction(&mut guard, path)
        }
        Conns::File { readers, .. } => {
            let readers = readers.clone();
            let path = path.to_path_buf();
            let failed = path.clone();
            let job = move || {
                // A free reader if there is one, else wait for the first.
                let free = readers.iter().find_map(|r| r.try_lock().ok());
                let mut guard = match free {
                    Some(guard) => guard,
                    None => match readers.first() {
                        Some(r) => r.lock().unwrap_or_else(|e| e.into_inner()),
                        None => {
                            return Err(StoreError::Other {
                                path: path.clone(),
                                reason: "the store has no read connection".into(),
                            })
                        }
                    },
                };
                in_transaction(&mut guard, &path)
            };
            match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::task::spawn_blocking(job)
                    .await
                    .map_err(|e| StoreError::Other {
                        path: failed,
                        reason: format!("store thread failed: {e}"),
                    })?,
                Err(_) => job(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<T: Send + 'static>(
        work: impl FnOnce(&mut Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    ) -> (
        Box<dyn Job>,
        tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    ) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        (Box::new(Pending { work, reply }), answer)
    }

    fn insert(n: i64) -> impl FnOnce(&mut Connection, &Path) -> Result<(), StoreError> {
        move |conn, path| {
            conn.execute("INSERT INTO t (n) VALUES (?1)", [n])
                .map(|_| ())
                .map_err(|e| map(path, e))
        }
    }

    /// A transaction that SQLite ends in the middle of a group (as a full disk does) fails every
    /// write of the group, the ones before it included: none is answered as done.
    #[test]
    fn a_group_whose_transaction_ends_early_fails_every_write() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let path = Path::new("test.db");
        let (first, first_answer) = job(insert(1));
        let (breaks, breaks_answer) = job(|conn: &mut Connection, _: &Path| {
            // What SQLite does on its own on SQLITE_FULL.
            conn.execute_batch("ROLLBACK").ok();
            Ok(())
        });
        let (after, after_answer) = job(insert(3));
        commit_group(&mut conn, path, vec![first, breaks, after]);
        for answer in [first_answer, breaks_answer, after_answer] {
            let got = answer.blocking_recv().unwrap();
            assert!(matches!(got, Err(StoreError::Write { .. })), "{got:?}");
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    /// A write that fails rolls back alone; the rest of its group is committed.
    #[test]
    fn a_failing_write_rolls_back_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let path = Path::new("test.db");
        let (a, a_answer) = job(insert(1));
        let (bad, bad_answer) = job(|conn: &mut Connection, path: &Path| {
            insert(2)(conn, path)?;
            Err::<(), _>(StoreError::Conflict("refused".into()))
        });
        let (c, c_answer) = job(insert(3));
        commit_group(&mut conn, path, vec![a, bad, c]);
        assert!(a_answer.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            bad_answer.blocking_recv().unwrap(),
            Err(StoreError::Conflict(_))
        ));
        assert!(c_answer.blocking_recv().unwrap().is_ok());
        let kept: Vec<i64> = conn
            .prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kept, vec![1, 3]);
    }
}
