//! The PostgreSQL store end to end: `bulkhead run` SIGKILLed mid-run and resumed with the runs in
//! PostgreSQL, nothing that had succeeded run again; `runs` and `show` read them back.
//!
//! Needs a PostgreSQL server and `psql`: `BULKHEAD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `bash .ci/run` starts one where none answers.
//! Without one the tests fail saying so; they never skip.

use crate::durable::kill_and_resume_in;
use crate::support::Case;
use std::process::Command;
use std::time::Duration;

/// The PostgreSQL server the tests use.
pub fn server() -> String {
    std::env::var("BULKHEAD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test, dropped when it ends.
struct Database {
    name: String,
    url: String,
}

impl Database {
    fn new() -> Database {
        // `.ci/run` sets a prefix per run and drops what is left with it at the end.
        let prefix =
            std::env::var("BULKHEAD_TEST_DB_PREFIX").unwrap_or_else(|_| "bulkhead_test_".into());
        let name = format!("{prefix}{}", uuid::Uuid::now_v7().simple());
        psql(&format!("CREATE DATABASE {name}"));
        let server = server();
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        Database {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .arg(server())
        .args(["-q", "-c", sql])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run psql ({e}); install PostgreSQL's client (`bash .ci/run` does)")
        });
    assert!(
        out.status.success(),
        "psql {sql}: {} (is a PostgreSQL server running at {}? `bash .ci/run` starts one)",
        String::from_utf8_lossy(&out.stderr),
        server()
    );
}

#[test]
fn a_killed_run_resumes_from_postgres_without_redoing_finished_tasks() {
    let db = Database::new();
    // Slow tasks: the kill lands inside attempts of the second layer.
    assert!(kill_and_resume_in(
        &[50, 50, 50, 50, 400, 400, 400, 400, 50, 50, 50, 50],
        Duration::from_millis(400),
        Some(&db.url)
    ));
}

#[test]
fn runs_and_show_read_runs_back_from_postgres() {
    let db = Database::new();
    let mut case =
        Case::new("name: pg\ntasks:\n  a: {plugin: noop}\n  b: {plugin: noop, needs: [a]}\n");
    case.store_url = Some(db.url.clone());
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let run_id = ran.report["run_id"].as_str().unwrap().to_string();
    let out = case.bulkhead().args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    let out = case
        .bulkhead()
        .args(["show", "--json", &run_id])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["tasks"]["b"]["status"], "succeeded", "{shown:#}");
    // A second database URL that does not exist: a clear error naming it, exit 1, no panic.
    let mut missing = Case::new("name: pg\ntasks:\n  a: {plugin: noop}\n");
    missing.store_url = Some(format!("{}_missing", db.url));
    let ran = missing.run(&[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("does not exist") && ran.stderr.contains("createdb"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

/// `psql -At` of one query on `url`: its output, trimmed.
fn query(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-At", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn count(url: &str, sql: &str) -> i64 {
    query(url, sql)
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `done` until it holds, or fails saying `what` after `within`.
fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three `bulkhead serve` hosts on one database share 300 API runs, 15 delayed runs and a cron
/// schedule. One host is SIGKILLed while it holds runs, another SIGSTOPped past its lease and
/// continued after its runs were taken over. Every run finishes, each task has exactly one
/// successful attempt, a task ran again only where an attempt was interrupted, each delayed run
/// and cron time started once, and the stopped host's late commits were refused.
#[test]
fn three_hosts_share_the_work_and_survive_a_kill_and_a_stop() {
    use crate::serve::Site;
    let db = Database::new();
    let mut site = Site::new();
    site.store = Some(db.url.clone());
    site.plugin("ledger");
    let ledger = site.path("ledger");
    std::fs::create_dir(&ledger).unwrap();
    let task = |ms: u64, needs: &str| {
        format!(
            "{{plugin: ledger, params: {{ms: {ms}}}, needs: [{needs}], mounts: [{{host: {}, guest: /ledger, writable: true}}]}}",
            ledger.display()
        )
    };
    site.workflow(
        "chain.yaml",
        &format!(
            "name: chain\ntasks:\n  a: {}\n  b: {}\n  c: {}\n",
            task(150, ""),
            task(150, "a"),
            task(150, "b")
        ),
    );
    site.workflow(
        "tick.yaml",
        &format!(
            "name: tick\nschedule: \"* * * * *\"\ntasks:\n  t: {}\n",
            task(1, "")
        ),
    );
    let mut hosts: Vec<_> = (0..3)
        .map(|_| site.serve(&["--max-parallel", "4"]))
        .collect();
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(hosts[i % 3].trigger(None, "chain"));
    }
    let at = chrono::Utc::now() + chrono::Duration::seconds(4);
    for _ in 0..15 {
        let (code, body) = hosts[0].post(
            "/api/runs",
            None,
            &serde_json::json!({"workflow": "chain", "at": at.to_rfc3339()}).to_string(),
        );
        assert_eq!(code, 201, "{body}");
        ids.push(body["run_id"].as_str().unwrap().to_string());
    }
    let pid = |h: &crate::serve::Served| h.pid();
    let holding = |p: u32| {
        count(
            &db.url,
            &format!(
                "SELECT count(*) FROM runs WHERE status = 'running' AND lease_owner LIKE '%:{p}:%'"
            ),
        )
    };
    // Which host keeps going, which is killed and which is stopped, and how long after they
    // all hold runs: from the seed (`BULKHEAD_CLUSTER_SEED=N` runs another case).
    let seed: u64 = std::env::var("BULKHEAD_CLUSTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let [keep, kill, stop] = orders[(seed % 6) as usize];
    let pause = Duration::from_millis(seed.wrapping_mul(2_654_435_761) % 700);
    eprintln!("seed {seed}: host {keep} keeps going, {kill} is killed, {stop} is stopped, {pause:?} after all hold runs");
    let (killed, stopped) = (pid(&hosts[kill]), pid(&hosts[stop]));
    // Every host sees the whole cluster: three heartbeats, each with its own slots.
    wait_until(Duration::from_secs(30), "three hosts in /api/hosts", || {
        hosts[2].get("/api/hosts").1["hosts"]
            .as_array()
            .map_or(0, |h| h.len())
            == 3
    });
    let (_, listed) = hosts[keep].get("/api/hosts");
    for h in listed["hosts"].as_array().unwrap() {
        assert_eq!(h["slots"], 4, "{listed}");
    }
    let out = site.cli(&["hosts", "--json"]);
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let owners = |v: &serde_json::Value| {
        let mut o: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["owner"].as_str().unwrap().to_string())
            .collect();
        o.sort();
        o
    };
    assert_eq!(
        owners(&cli),
        owners(&listed["hosts"]),
        "`bulkhead hosts` lists the same hosts"
    );
    for p in [pid(&hosts[keep]), killed, stopped] {
        assert!(
            owners(&cli).iter().any(|o| o.contains(&format!(":{p}:"))),
            "host {p} listed: {cli}"
        );
    }
    wait_until(
        Duration::from_secs(60),
        "hosts 2 and 3 to hold runs",
        || holding(killed) > 0 && holding(stopped) > 0,
    );
    std::thread::sleep(pause);
    hosts[kill].signal("KILL");
    hosts[stop].signal("STOP");
    let held_by_stopped = holding(stopped);
    // The dead host's runs are adopted within a reaping interval; the stopped host's once its
    // lease (60 s on the database's clock) has run out.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while count(
        &db.url,
        "SELECT count(*) FROM runs WHERE workflow = 'chain' AND status = 'succeeded'",
    ) < 315
    {
        // Claims follow free slots: no host ever holds more runs than its four slots.
        for h in &hosts {
            let held = holding(pid(h));
            assert!(held <= 4, "host {} holds {held} runs with 4 slots", pid(h));
        }
        if std::time::Instant::now() > deadline {
            let states = query(
                &db.url,
                "SELECT status, left(coalesce(lease_owner, '-'), 40), count(*) FROM runs GROUP BY 1, 2",
            );
            let triggers = query(
                &db.url,
                "SELECT claimed_at IS NOT NULL, error, count(*) FROM triggers t WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = t.run_id) GROUP BY 1, 2",
            );
            let stuck = query(
                &db.url,
                "SELECT run_id, lease_owner, lease_expires_at, clock_timestamp() FROM runs WHERE status <> 'succeeded'",
            );
            let first = stuck.split('|').next().unwrap_or("").to_string();
            let said: Vec<String> = hosts[keep]
                .tail(usize::MAX)
                .lines()
                .filter(|l| l.contains(&first))
                .map(str::to_string)
                .collect();
            panic!(
                "not every run succeeded; runs:\n{states}\ntriggers without a run:\n{triggers}\nstuck:\n{stuck}\nhost 1 said of it:\n{}\nhost pids: {killed} killed, {stopped} stopped",
                said.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Only the host that kept beating is alive now.
    wait_until(
        Duration::from_secs(30),
        "the dead and the stopped host to drop out",
        || {
            hosts[keep].get("/api/hosts").1["hosts"]
                .as_array()
                .map_or(0, |h| h.len())
                == 1
        },
    );
    hosts[stop].signal("CONT");
    wait_until(
        Duration::from_secs(30),
        "the stopped host to learn it lost its runs",
        || hosts[stop].saw("taken over by another host"),
    );
    // Nothing the zombie did afterwards landed: still exactly one success per task, and no
    // attempt is left running.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) FROM (SELECT run_id, task FROM attempts WHERE status = 'succeeded'
               GROUP BY run_id, task HAVING count(*) <> 1) x"
        ),
        0,
        "a task has other than one successful attempt"
    );
    assert_eq!(
        count(
            &db.url,
            "SELECT count(*) FROM attempts WHERE status = 'running'"
        ),
        0
    );
    assert_eq!(
        count(&db.url, "SELECT count(*) FROM tasks t JOIN runs r USING (run_id) WHERE r.workflow = 'chain' AND t.status = 'succeeded'"),
        315 * 3
    );
    let interrupted: std::collections::HashSet<String> = query(
        &db.url,
        "SELECT DISTINCT run_id || ':' || task FROM attempts WHERE status = 'interrupted'",
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert!(
        !interrupted.is_empty(),
        "the kill and the stop interrupted attempts"
    );
    // The ledger: every task of every run ran; one ran twice only if an attempt was interrupted.
    let text = std::fs::read_to_string(ledger.join("ledger.txt")).unwrap();
    let mut lines: std::collections::HashMap<String, usize> = Default::default();
    for line in text.lines() {
        let key = line.split(' ').nth(2).unwrap().to_string();
        *lines.entry(key).or_default() += 1;
    }
    for id in &ids {
        for t in ["a", "b", "c"] {
            let key = format!("{id}:{t}");
            let n = lines.get(&key).copied().unwrap_or(0);
            assert!(n >= 1, "{key} never ran");
            assert!(
                n == 1 || interrupted.contains(&key),
                "{key} ran {n} times without an interrupted attempt"
            );
        }
    }
    // Each delayed run started once (one run row per trigger), and each cron time fired once.
    let delayed = ids[300..]
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        count(
            &db.url,
            &format!(
                "SELECT count(*) FROM runs WHERE run_id IN ({delayed}) AND status = 'succeeded'"
            )
        ),
        15
    );
    let fires = count(&db.url, "SELECT count(*) FROM triggers WHERE kind = 'cron'");
    assert!(
        fires >= 1,
        "the test spans a minute boundary: the schedule fired"
    );
    assert_eq!(
        count(
            &db.url,
            "SELECT count(DISTINCT due_at) FROM triggers WHERE kind = 'cron'"
        ),
        fires,
        "each cron time has one trigger"
    );
    eprintln!(
        "three hosts: {} runs held by the stopped host, {} tasks interrupted and rerun, {fires} cron fires",
        held_by_stopped,
        interrupted.len()
    );
    assert_eq!(hosts[keep].stop(), Some(0));
}

/// A host with none of the plugins and no local copies retries a run another host started:
/// the plugin version comes from the database (its hash checked), not from any folder.
#[test]
fn a_host_without_the_plugin_retries_a_run_with_the_copy_in_the_database() {
    let db = Database::new();
    let mut case = Case::new("name: pg\ntasks:\n  boom: {plugin: panic}\n");
    case.store_url = Some(db.url.clone());
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1, "the panic plugin fails: {}", ran.stderr);
    let run_id = ran.report["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        count(&db.url, "SELECT count(*) FROM plugin_copies"),
        1,
        "the run's one plugin was kept in the database"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(elsewhere.path().join("plugins")).unwrap();
    let out = case
        .bulkhead()
        .env("BULKHEAD_PLUGINS", elsewhere.path().join("plugins"))
        .env("BULKHEAD_CACHE_DIR", elsewhere.path().join("cache"))
        .args(["retry", &run_id, "boom"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the retried attempt ran and failed again: {stderr}"
    );
    let attempts = count(
        &db.url,
        &format!("SELECT count(*) FROM attempts WHERE run_id = '{run_id}' AND status = 'failed'"),
    );
    assert_eq!(
        attempts, 2,
        "the second attempt ran on the fetched copy: {stderr}"
    );
    let fetched = std::fs::read_dir(elsewhere.path().join("plugin-copies"))
        .unwrap()
        .count();
    assert_eq!(fetched, 1, "the copy was fetched into this host's folder");
}
