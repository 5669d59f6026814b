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

fn server() -> String {
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
        let name = format!("bulkhead_test_{}", uuid::Uuid::now_v7().simple());
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
