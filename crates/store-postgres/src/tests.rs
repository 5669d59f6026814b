//! The PostgreSQL backend against the shared store conformance suite, and what several hosts on
//! one database need: migrations applied once when hosts start together, a newer schema refused
//! untouched, claims split between hosts, a host that lost its lease fenced off, bytes kept.
//!
//! The tests need a PostgreSQL server: `BULKHEAD_TEST_POSTGRES` (a URL of a database to connect
//! to for creating others), or `postgres://postgres@127.0.0.1:5432/postgres`. `bash .ci/run`
//! starts one where none answers. Each test creates databases of its own and drops them; a
//! missing server fails the tests with a message saying so (they never skip).

use super::*;
use bulkhead_core::store::suite::new_run;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Mutex;

fn server() -> String {
    std::env::var("BULKHEAD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Test databases are named with this prefix and a UUID: `BULKHEAD_TEST_DB_PREFIX` (`.ci/run`
/// sets one per run, and drops what is left with it at the end) or `bulkhead_test_`.
fn db_prefix() -> String {
    std::env::var("BULKHEAD_TEST_DB_PREFIX").unwrap_or_else(|_| "bulkhead_test_".into())
}

/// Databases made for one test (by the crate's own `create_database`), dropped by
/// [`Scratch::finish`].
struct Scratch {
    server: String,
    made: Mutex<Vec<String>>,
}

impl Scratch {
    async fn new() -> Scratch {
        let server = server();
        if let Err(e) = tokio_postgres::connect(&server, NoTls).await {
            panic!("no PostgreSQL server at {server} ({e}): start one (`bash .ci/run` does) or set BULKHEAD_TEST_POSTGRES");
        }
        Scratch {
            server,
            made: Mutex::new(Vec::new()),
        }
    }

    /// The URL of a new, empty database.
    async fn url(&self) -> String {
        let name = format!("{}{}", db_prefix(), uuid::Uuid::now_v7().simple());
        let url = create_database(&self.server, &name).await.unwrap();
        self.made.lock().await.push(name);
        url
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url().await).await.unwrap()
    }

    async fn finish(self) {
        for name in self.made.lock().await.drain(..) {
            drop_database(&self.server, &name).await.unwrap();
        }
    }
}

/// A plain connection to the store's database, to look under the API.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The database at `url` brought to schema `version` only, as an earlier build left it.
async fn database_at_schema(url: &str, version: i64) -> tokio_postgres::Client {
    let db = raw(url).await;
    db.batch_execute("CREATE TABLE bulkhead_schema (version bigint NOT NULL)")
        .await
        .unwrap();
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
        db.batch_execute(sql).await.unwrap();
        db.execute("INSERT INTO bulkhead_schema (version) VALUES ($1)", &[v])
            .await
            .unwrap();
    }
    db
}

#[tokio::test]
async fn passes_the_store_conformance_suite() {
    let scratch = Scratch::new().await;
    bulkhead_core::store::suite::suite(|| async {
        Box::new(scratch.store().await) as Box<dyn Store>
    })
    .await;
    scratch.finish().await;
}

#[tokio::test]
async fn hosts_starting_together_apply_each_migration_once() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let opened = futures_util::future::join_all((0..4).map(|_| PostgresStore::connect(&url))).await;
    for store in opened {
        store.unwrap();
    }
    let versions: Vec<i64> = raw(&url)
        .await
        .query("SELECT version FROM bulkhead_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    scratch.finish().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    store
        .create_run(new_run("kept", &Owner::new(), 10))
        .await
        .unwrap();
    drop(store);
    let db = raw(&url).await;
    db.execute("INSERT INTO bulkhead_schema (version) VALUES (99)", &[])
        .await
        .unwrap();
    match PostgresStore::connect(&url).await {
        Err(StoreError::TooNew {
            found, supported, ..
        }) => assert_eq!((found, supported), (99, SCHEMA_VERSION)),
        other => panic!("expected TooNew, got {other:?}"),
    }
    let runs: i64 = db
        .query_one("SELECT count(*) FROM runs", &[])
        .await
        .unwrap()
        .get(0);
    let versions: i64 = db
        .query_one("SELECT count(*) FROM bulkhead_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((runs, versions), (1, SCHEMA_VERSION + 1));
    scratch.finish().await;
}

/// A database of schema 7 upgrades its triggers: one whose run exists is closed (`fulfilled_at`
/// is the run's creation), so claims and lists read only open ones by partial index; an orphan
/// and a trigger not yet claimed stay open and are handed out. A run created afterwards closes
/// its trigger in the same transaction.
#[tokio::test]
async fn a_schema_7_database_closes_the_triggers_whose_runs_exist_and_keeps_the_rest() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let db = database_at_schema(&url, 7).await;
    db.batch_execute(
        "INSERT INTO runs (run_id, workflow, workflow_hash, workflow_file, params, status, created_at)
         VALUES ('ran', 'wf', 'abc', '/flows/wf.yaml', '{}', 'succeeded', bulkhead_ts(40));
         INSERT INTO triggers (trigger_key, kind, workflow, params, due_at, created_at, run_id, claimed_at) VALUES
           ('once:ran', 'once', 'wf', '{}', bulkhead_ts(20), bulkhead_ts(10), 'ran', bulkhead_ts(30)),
           ('once:orphan', 'once', 'wf', '{}', bulkhead_ts(20), bulkhead_ts(10), 'orphan', bulkhead_ts(30)),
           ('once:due', 'once', 'wf', '{}', bulkhead_ts(20), bulkhead_ts(10), 'due', NULL);",
    )
    .await
    .unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    let claimed = store
        .claim_due(30 + ORPHAN_AFTER_MS + 1, 10, &RunCaps::new())
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(ids, vec!["due", "orphan"], "the due one, then the orphan");
    let mut run = new_run("due", &Owner::new(), 50);
    run.tasks = vec![];
    store.create_run(run).await.unwrap();
    let fulfilled: Vec<(String, Option<i64>)> = db
        .query(
            "SELECT run_id, bulkhead_ms(fulfilled_at) FROM triggers ORDER BY run_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        fulfilled,
        vec![
            ("due".to_string(), Some(50)),
            ("orphan".to_string(), None),
            ("ran".to_string(), Some(40))
        ]
    );
    drop(store);
    scratch.finish().await;
}

/// A database of schema 8 upgrades to 9: the two indexes of every trigger ever fired are gone;
/// its unclaimed triggers, of a capped workflow and of any other, are still counted as pending
/// and claimed, and the pending count can be answered from the partial index of open triggers.
#[tokio::test]
async fn a_schema_8_database_drops_the_full_trigger_indexes_and_still_claims_its_triggers() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let db = database_at_schema(&url, 8).await;
    db.batch_execute(
        "INSERT INTO triggers (trigger_key, kind, workflow, params, due_at, created_at, run_id, fulfilled_at) VALUES
           ('once:capped', 'once', 'capped', '{}', bulkhead_ts(20), bulkhead_ts(10), 'capped', NULL),
           ('once:free', 'once', 'free', '{}', bulkhead_ts(20), bulkhead_ts(10), 'free', NULL),
           ('once:done', 'once', 'free', '{}', bulkhead_ts(20), bulkhead_ts(10), 'done', bulkhead_ts(15));",
    )
    .await
    .unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(
        store.pending_triggers().await.unwrap(),
        2,
        "the two open ones"
    );
    let caps = RunCaps::from([("capped".to_string(), 1)]);
    let claimed = store.claim_due(30, 10, &caps).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(ids, vec!["capped", "free"]);
    assert_eq!(store.pending_triggers().await.unwrap(), 0);
    let indexes: Vec<String> = db
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'triggers' AND indexdef NOT LIKE 'CREATE UNIQUE%' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        indexes,
        vec![
            "triggers_by_workflow",
            "triggers_open",
            "triggers_open_by_run",
            "triggers_open_by_workflow"
        ]
    );
    // A table this small is scanned whole; with scans of it off, the plan shows the index fits.
    db.batch_execute("SET enable_seqscan = off").await.unwrap();
    let plan: Vec<String> = db
        .query(
            "EXPLAIN SELECT count(*) FROM triggers WHERE fulfilled_at IS NULL AND claimed_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.join("\n").contains("triggers_open"), "{plan:?}");
    drop(store);
    scratch.finish().await;
}

#[tokio::test]
async fn hosts_claiming_at_once_take_each_trigger_exactly_once() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let hosts = three_hosts_with_due_triggers(&url, "wf", 300).await;
    let mut claims = Vec::new();
    for host in &hosts {
        let host = host.clone();
        claims.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = host.claim_due(now_ms(), 7, &RunCaps::new()).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|t| t.run_id));
            }
        }));
    }
    let mut all = HashSet::new();
    for claim in claims {
        for id in claim.await.unwrap() {
            assert!(all.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(all.len(), 300, "every due trigger was claimed");
    assert_eq!(hosts[1].pending_triggers().await.unwrap(), 0);
    scratch.finish().await;
}

/// Three stores (hosts) on the database at `url`, and `n` triggers of `workflow` already due
/// (`run-000`, `run-001`, ..., oldest first), added through the first.
async fn three_hosts_with_due_triggers(
    url: &str,
    workflow: &str,
    n: i64,
) -> Vec<Arc<PostgresStore>> {
    let mut hosts = Vec::new();
    for _ in 0..3 {
        hosts.push(Arc::new(PostgresStore::connect(url).await.unwrap()));
    }
    let now = now_ms();
    for i in 0..n {
        let added = hosts[0]
            .add_trigger(NewTrigger {
                kind: TriggerKind::Once,
                workflow: workflow.into(),
                params: serde_json::json!({"i": i}),
                due_at: now - 1000 + i,
                created_at: now,
                run_id: format!("run-{i:03}"),
            })
            .await
            .unwrap();
        assert!(added);
    }
    hosts
}

/// Three hosts claiming a capped workflow at the same moments, each starting what it claims
/// and ending some of its runs between rounds: the workflow never has more runs unfinished or
/// starting than its cap, and every trigger starts once.
#[tokio::test]
async fn hosts_claiming_together_never_pass_max_active_runs() {
    const CAP: usize = 3;
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let hosts = three_hosts_with_due_triggers(&url, "capped", 40).await;
    let now = now_ms();
    let caps: RunCaps = [("capped".to_string(), CAP as u32)].into();
    let me = Owner::new();
    let mut running: Vec<String> = Vec::new();
    let mut started = HashSet::new();
    let mut round = 0;
    while started.len() < 40 {
        round += 1;
        assert!(round < 200, "claims stopped making progress");
        let mut claims = Vec::new();
        for host in &hosts {
            let (host, caps) = (host.clone(), caps.clone());
            claims.push(tokio::spawn(async move {
                host.claim_due(now_ms(), 10, &caps).await.unwrap()
            }));
        }
        let mut got = Vec::new();
        for claim in claims {
            got.extend(claim.await.unwrap());
        }
        assert!(
            running.len() + got.len() <= CAP,
            "round {round}: {} running and {} claimed at once, cap {CAP}",
            running.len(),
            got.len()
        );
        for t in got {
            assert!(
                started.insert(t.run_id.clone()),
                "{} started twice",
                t.run_id
            );
            let mut run = new_run(&t.run_id, &me, now);
            run.workflow = "capped".into();
            hosts[round % 3].create_run(run).await.unwrap();
            running.push(t.run_id);
        }
        // End the oldest one or two, so the next round has room to fight over.
        for id in running.drain(..running.len().min(1 + round % 2)) {
            let ended = Transition::RunEnded {
                status: RunStatus::Succeeded,
                at: now_ms(),
            };
            hosts[0]
                .commit(&id, &Lease::created(&me), vec![ended])
                .await
                .unwrap();
        }
    }
    assert_eq!(hosts[2].pending_triggers().await.unwrap(), 0);
    scratch.finish().await;
}

#[tokio::test]
async fn a_host_that_lost_its_lease_commits_nothing_more() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let (a, b) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    let (host_a, host_b) = (Owner("host-a:1:aaaa".into()), Owner("host-b:1:bbbb".into()));
    let held = a.create_run(new_run("r", &host_a, 10)).await.unwrap();
    let start = Transition::AttemptStarted {
        task: "a".into(),
        position: 0,
        attempt: 1,
        at: now_ms(),
    };
    a.commit("r", &held, vec![start]).await.unwrap();
    // Host A stops (paused, partitioned) past its lease; host B takes the run over.
    match b.acquire("r", &host_b, now_ms(), 1000).await {
        Err(StoreError::Held { owner, .. }) => assert_eq!(owner, host_a.0),
        other => panic!("a live lease must be held, got {other:?}"),
    }
    let taken = b
        .acquire("r", &host_b, now_ms() + LEASE_TTL_MS + 1, LEASE_TTL_MS)
        .await
        .unwrap();
    // A wakes up mid-attempt: its late result and every later commit are refused.
    let late = Transition::AttemptEnded {
        task: "a".into(),
        position: 0,
        attempt: 1,
        at: now_ms(),
        end: AttemptEnd::Succeeded(OutputJson::of(&serde_json::json!("late"))),
        duration_us: 1,
        fuel_used: 1,
        peak_memory: 1,
        log: String::new(),
        task_state: Some(TaskStatus::Succeeded),
    };
    assert!(matches!(
        a.commit("r", &held, vec![late]).await,
        Err(StoreError::LostLease(_))
    ));
    let run = b.load("r").await.unwrap();
    assert_eq!(run.tasks[0].state, TaskStatus::Pending);
    assert_eq!(
        run.tasks[0].output, None,
        "the zombie's output was not kept"
    );
    assert_eq!(run.attempts[0].status, AttemptStatus::Interrupted);
    assert_eq!(run.lease_owner.as_deref(), Some(host_b.0.as_str()));
    let generation: i64 = raw(&url)
        .await
        .query_one("SELECT lease_generation FROM runs WHERE run_id = 'r'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(generation, 2, "created (1), taken over (2)");
    assert_eq!(taken.generation, generation);
    b.commit("r", &taken, vec![]).await.unwrap();
    scratch.finish().await;
}

#[tokio::test]
async fn the_lease_runs_on_the_database_clock() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let me = Owner::new();
    store.create_run(new_run("r", &me, 10)).await.unwrap();
    store
        .commit("r", &Lease::created(&me), vec![])
        .await
        .unwrap();
    let row = raw(&url)
        .await
        .query_one(
            "SELECT bulkhead_ms(lease_expires_at) - bulkhead_ms(clock_timestamp()) FROM runs WHERE run_id = 'r'",
            &[],
        )
        .await
        .unwrap();
    let left: i64 = row.get(0);
    assert!(
        (LEASE_TTL_MS - 5_000..=LEASE_TTL_MS).contains(&left),
        "a renewal sets the lease to the database's now + TTL; {left} ms left"
    );
    scratch.finish().await;
}

#[tokio::test]
async fn logs_messages_params_and_outputs_keep_every_byte() {
    let scratch = Scratch::new().await;
    let store = scratch.store().await;
    let me = Owner::new();
    let mut run = new_run("r", &me, 10);
    run.params = serde_json::json!({"zero": "a\u{0}b", "ü": "✓"});
    store.create_run(run).await.unwrap();
    let log = "line one\u{0}with a NUL\n\u{1b}[31mred\u{1b}[0m ✓".to_string();
    let output = OutputJson::parse(b"{\"b\": 1, \"a\": \"\\u0000\"}".to_vec()).unwrap();
    let batch = vec![
        Transition::AttemptStarted {
            task: "a".into(),
            position: 0,
            attempt: 1,
            at: 1,
        },
        Transition::AttemptStarted {
            task: "b".into(),
            position: 1,
            attempt: 1,
            at: 1,
        },
    ];
    store
        .commit("r", &Lease::created(&me), batch)
        .await
        .unwrap();
    let ends = vec![
        Transition::AttemptEnded {
            task: "a".into(),
            position: 0,
            attempt: 1,
            at: 2,
            end: AttemptEnd::Succeeded(output.clone()),
            duration_us: 3,
            fuel_used: 4,
            peak_memory: 5,
            log: log.clone(),
            task_state: Some(TaskStatus::Succeeded),
        },
        Transition::AttemptEnded {
            task: "b".into(),
            position: 1,
            attempt: 1,
            at: 2,
            end: AttemptEnd::Failed {
                kind: "permanent".into(),
                message: "the plugin said \u{0}no".into(),
                exit_code: Some(1),
            },
            duration_us: 3,
            fuel_used: 4,
            peak_memory: 5,
            log: String::new(),
            task_state: Some(TaskStatus::Failed),
        },
    ];
    store.commit("r", &Lease::created(&me), ends).await.unwrap();
    let loaded = store.load("r").await.unwrap();
    assert_eq!(loaded.params["zero"], "a\u{0}b");
    assert_eq!(
        loaded.tasks[0]
            .output
            .as_ref()
            .map(|o| o.as_str().to_string()),
        Some("{\"b\": 1, \"a\": \"\\u0000\"}".to_string()),
        "the output's text is kept as the plugin wrote it"
    );
    assert_eq!(
        loaded.tasks[1].error.as_ref().map(|e| e.1.as_str()),
        Some("the plugin said \u{0}no")
    );
    let logs = store.logs("r", Some("a"), None).await.unwrap();
    assert_eq!(logs[0].log, log);
    scratch.finish().await;
}

#[tokio::test]
async fn an_unreachable_server_or_a_bad_url_is_a_clear_error() {
    match PostgresStore::connect("postgres://bulkhead:secret@127.0.0.1:1/nowhere").await {
        Err(e @ StoreError::Open { .. }) => {
            let m = e.to_string();
            assert!(m.contains("postgres://bulkhead@127.0.0.1:1/nowhere"), "{m}");
            assert!(!m.contains("secret"), "the password is never shown: {m}");
        }
        other => panic!("expected Open, got {other:?}"),
    }
    match PostgresStore::connect("postgres://127.0.0.1:notaport/db").await {
        Err(e @ StoreError::Open { .. }) => {
            assert!(e.to_string().contains("not a PostgreSQL URL"), "{e}")
        }
        other => panic!("expected Open, got {other:?}"),
    }
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let missing = format!("{}_missing", url);
    match PostgresStore::connect(&missing).await {
        Err(e @ StoreError::Open { .. }) => {
            assert!(e.to_string().contains("does not exist"), "{e}")
        }
        other => panic!("expected Open for a missing database, got {other:?}"),
    }
    scratch.finish().await;
}

#[tokio::test]
async fn plugin_copies_are_kept_once_in_chunks_and_read_back_exactly() {
    let scratch = Scratch::new().await;
    let url = scratch.url().await;
    let (a, b) = (
        PostgresStore::connect(&url).await.unwrap(),
        PostgresStore::connect(&url).await.unwrap(),
    );
    // 2.5 chunks of bytes that differ at every offset.
    let bytes: Vec<u8> = (0..copies::CHUNK * 5 / 2)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    assert!(!a.has_plugin("h1").await.unwrap());
    let (x, y) = tokio::join!(
        a.put_plugin("h1", &bytes[..]),
        b.put_plugin("h1", &bytes[..])
    );
    x.unwrap();
    y.unwrap();
    assert!(b.has_plugin("h1").await.unwrap());
    let mut back = Vec::new();
    assert!(b.get_plugin("h1", &mut back).await.unwrap());
    assert!(back == bytes, "the copy reads back byte for byte");
    let chunks = count_rows(&url, "SELECT count(*) FROM plugin_chunks").await;
    assert_eq!(chunks, 3, "stored once, in three chunks");
    assert!(!a.get_plugin("missing", &mut Vec::new()).await.unwrap());
    // A damaged copy (a chunk gone) is an error naming it, never a short plugin.
    raw(&url)
        .await
        .execute("DELETE FROM plugin_chunks WHERE chunk = 1", &[])
        .await
        .unwrap();
    match a.get_plugin("h1", &mut Vec::new()).await {
        Err(e @ StoreError::Corrupt { .. }) => assert!(e.to_string().contains("h1"), "{e}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    a.put_plugin("h2", &b"tiny"[..]).await.unwrap();
    assert_eq!(a.prune_plugins(&["h2".to_string()]).await.unwrap(), 1);
    assert!(a.has_plugin("h2").await.unwrap() && !a.has_plugin("h1").await.unwrap());
    scratch.finish().await;
}

async fn count_rows(url: &str, sql: &str) -> i64 {
    raw(url).await.query_one(sql, &[]).await.unwrap().get(0)
}
