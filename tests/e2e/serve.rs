//! `bulkhead serve` against a real server process on loopback.

use crate::support::{bulkhead, test_plugins};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process with its own folders and store.
pub struct Served {
    child: Option<Child>,
    pub base: String,
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

pub struct Site {
    dir: tempfile::TempDir,
    /// The store every process of the site uses: its own SQLite file unless set (a
    /// PostgreSQL URL shared by several servers).
    pub store: Option<String>,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workflows")).unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        Site { dir, store: None }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn plugin(&self, name: &str) {
        copy_atomically(
            &test_plugins().join(format!("{name}.wasm")),
            &self.path(&format!("plugins/{name}.wasm")),
        );
    }

    /// The CLI on this site's store.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        bulkhead()
            .env("BULKHEAD_STORE", self.store_arg())
            .args(args)
            .output()
            .unwrap()
    }

    fn store_arg(&self) -> std::ffi::OsString {
        match &self.store {
            Some(url) => url.into(),
            None => self.path("state.db").into(),
        }
    }

    pub fn workflow(&self, file: &str, yaml: &str) {
        let tmp = self.path(&format!("{file}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(tmp, self.path(&format!("workflows/{file}"))).unwrap();
    }

    pub fn serve(&self, extra: &[&str]) -> Served {
        let mut child = bulkhead()
            .env("BULKHEAD_STORE", self.store_arg())
            .env("BULKHEAD_PLUGINS", self.path("plugins"))
            .env("RUST_LOG", "bulkhead=info")
            .args(["serve", "--listen", "127.0.0.1:0", "--workflows"])
            .arg(self.path("workflows"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child: Some(child),
            base: String::new(),
            log: rx,
            lines: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while served.base.is_empty() {
            let line = served
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("the server did not start: {:?}", served.lines));
            if let Some(addr) = line.strip_prefix("listening on ") {
                served.base = addr.to_string();
            }
            served.lines.push(line);
        }
        served
    }
}

fn copy_atomically(from: &Path, to: &Path) {
    let tmp = to.with_extension("part");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(tmp, to).unwrap();
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        answer(
            ureq::get(&self.url(path))
                .config()
                .http_status_as_error(false)
                .build()
                .call(),
        )
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = ureq::post(&self.url(path))
            .config()
            .http_status_as_error(false)
            .build();
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        answer(req.content_type("application/json").send(body))
    }

    pub fn trigger(&self, token: Option<&str>, workflow: &str) -> String {
        let (status, body) = self.post(
            "/api/runs",
            token,
            &json!({"workflow": workflow}).to_string(),
        );
        assert_eq!(status, 201, "{body}");
        body["run_id"].as_str().unwrap().to_string()
    }

    pub fn wait_for(&self, run_id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, body) = self.get(&format!("/api/runs/{run_id}"));
            if code == 200 && body["status"] == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} is not {status}: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the server process.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server runs");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{signal}");
    }

    /// SIGTERM; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().ok()?;
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        status.code()
    }

    /// The last `n` lines the server logged.
    pub fn tail(&mut self, n: usize) -> String {
        self.saw("");
        self.lines[self.lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn saw(&mut self, text: &str) -> bool {
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        self.lines.iter().any(|l| l.contains(text))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut resp = r.expect("request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const HELLO: &str = "name: hello\ntasks:\n  greet: {plugin: echo, params: {who: world}}\n  after: {plugin: noop, needs: [greet]}\n";

/// `max_active_runs: 1`: the runs of a workflow go one after another, oldest trigger first,
/// and one waiting its turn is listed as pending; another workflow's runs are not held back.
#[test]
fn max_active_runs_makes_runs_of_a_workflow_take_turns() {
    let site = Site::new();
    site.plugin("sleep");
    site.plugin("noop");
    site.workflow(
        "one.yaml",
        "name: one\nmax_active_runs: 1\ntasks:\n  s: {plugin: sleep, params: {ms: 300}}\n",
    );
    site.workflow("free.yaml", "name: free\ntasks:\n  n: {plugin: noop}\n");
    let mut served = site.serve(&[]);
    let ids: Vec<String> = (0..4).map(|_| served.trigger(None, "one")).collect();
    let free = served.trigger(None, "free");
    served.wait_for(&free, "succeeded", Duration::from_secs(30));
    let (_, last) = served.get(&format!("/api/runs/{}", ids[3]));
    assert_eq!(
        last["status"], "pending",
        "three 300 ms runs are ahead of it, and `free` did not wait for them: {last}"
    );
    let mut spans = Vec::new();
    for id in &ids {
        let run = served.wait_for(id, "succeeded", Duration::from_secs(60));
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(run[k].as_str().unwrap()).unwrap();
        spans.push((at("started_at"), at("finished_at")));
    }
    for (i, w) in spans.windows(2).enumerate() {
        assert!(
            w[1].0 >= w[0].1,
            "run {} started at {} before run {} ended at {}",
            i + 1,
            w[1].0,
            i,
            w[0].1
        );
    }
    assert_eq!(served.stop(), Some(0));
}

#[test]
fn trigger_watch_to_completion_and_fetch_logs() {
    let site = Site::new();
    site.plugin("echo");
    site.plugin("noop");
    site.plugin("panic");
    site.workflow("hello.yaml", HELLO);
    site.workflow(
        "fails.yaml",
        "name: fails\ntasks:\n  boom: {plugin: panic}\n",
    );
    let mut s = site.serve(&["--token", "s3cret"]);
    let (status, body) = s.post(
        "/api/runs",
        Some("s3cret"),
        r#"{"workflow": "hello", "params": {"day": "monday"}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = body["run_id"].as_str().unwrap().to_string();
    let report = s.wait_for(&id, "succeeded", Duration::from_secs(30));
    assert_eq!(
        report["tasks"]["greet"]["output"]["received"]["run_params"],
        json!({"day": "monday"})
    );
    let (code, logs) = s.get(&format!("/api/runs/{id}/tasks/greet/logs"));
    assert_eq!(code, 200);
    assert_eq!(logs["status"], "succeeded");
    assert_eq!(logs["output"]["received"]["params"]["who"], "world");

    let failed = s.trigger(Some("s3cret"), "fails");
    s.wait_for(&failed, "failed", Duration::from_secs(30));
    let (_, logs) = s.get(&format!("/api/runs/{failed}/tasks/boom/logs"));
    assert!(
        logs["attempts"][0]["log"]
            .as_str()
            .unwrap()
            .contains("about to fail"),
        "{logs}"
    );

    let (code, page) = s.get("/api/runs?limit=1");
    assert_eq!(code, 200);
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, next) = s.get(&format!("/api/runs?limit=1&cursor={cursor}"));
    assert_eq!(next["runs"][0]["run_id"], id.as_str());
    assert_eq!(next["next_cursor"], Value::Null);
    let (_, filtered) = s.get("/api/runs?status=failed");
    assert_eq!(filtered["runs"].as_array().unwrap().len(), 1);

    let (code, metrics) = answer(ureq::get(&s.url("/metrics")).call());
    assert_eq!(code, 200);
    let text = metrics.as_str().unwrap();
    for name in [
        "bulkhead_runs_total{workflow=\"hello\",status=\"succeeded\"} 1",
        "bulkhead_runs_total{workflow=\"fails\",status=\"failed\"} 1",
        "bulkhead_attempts_total{status=\"failed\",kind=\"trap\"} 1",
        "bulkhead_schedule_lag_seconds_count 0",
        "bulkhead_running_attempts 0",
        "bulkhead_running_runs 0",
        "bulkhead_run_duration_seconds_count{workflow=\"hello\"} 1",
        "bulkhead_last_success_timestamp_seconds{workflow=\"hello\"} ",
        "bulkhead_build_info{version=",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(name), "{name} missing in:\n{text}");
    }
    let (code, page) = answer(ureq::get(&s.url("/")).call());
    assert_eq!(code, 200);
    let page = page.as_str().unwrap();
    assert!(
        page.contains("<title>Bulkhead</title>") && page.contains(r#"<script src="/ui.js">"#),
        "the web UI"
    );
    assert!(!page.contains("<script>"), "no inline script");
    let mut ui = ureq::get(&s.url("/ui.js")).call().unwrap();
    let csp = ui
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ui
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("/api/runs"));
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let (code, health) = s.get("/healthz");
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
    let (code, doc) = s.get("/api/openapi.json");
    assert_eq!(code, 200);
    assert!(
        doc["paths"]["/api/runs/{run_id}/tasks/{task}/retry"]["post"].is_object(),
        "{doc}"
    );
    assert_eq!(s.stop(), Some(0), "SIGTERM exits 0");
}

#[test]
fn mutations_need_the_token_and_bad_requests_are_named() {
    let site = Site::new();
    site.plugin("echo");
    site.plugin("noop");
    site.plugin("panic");
    site.workflow("hello.yaml", HELLO);
    let mut s = site.serve(&["--token", "s3cret"]);
    let body = r#"{"workflow": "hello"}"#;
    for token in [None, Some("wrong"), Some("")] {
        let (code, err) = s.post("/api/runs", token, body);
        assert_eq!(code, 401, "{token:?}: {err}");
        assert!(err["error"].as_str().unwrap().contains("token"));
    }
    let (code, _) = s.post("/api/runs/whatever/cancel", None, "");
    assert_eq!(code, 401);
    let (_, runs) = s.get("/api/runs");
    assert!(
        runs["runs"].as_array().unwrap().is_empty(),
        "nothing changed"
    );

    let t = Some("s3cret");
    let cases = [
        ("not json", "invalid request body"),
        (r#"{"wrkflow": "hello"}"#, "unknown field `wrkflow`"),
        (r#"{"params": {}}"#, "missing field `workflow`"),
        (
            r#"{"workflow": "helo"}"#,
            "field `workflow`: no workflow named `helo` is loaded (did you mean `hello`?)",
        ),
        (r#"{"workflow": "hello", "at": "tomorrow"}"#, "field `at`"),
        (r#"{"workflow": "hello", "params": [1]}"#, "field `params`"),
    ];
    for (body, expected) in cases {
        let (code, err) = s.post("/api/runs", t, body);
        assert_eq!(code, 400, "{body}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains(expected),
            "{body}: {err}"
        );
    }
    let huge = format!(
        r#"{{"workflow": "hello", "params": {{"x": "{}"}}}}"#,
        "a".repeat(200_000)
    );
    let (code, _) = s.post("/api/runs", t, &huge);
    assert_eq!(code, 413, "request bodies are size-limited");
    assert_eq!(s.get("/api/runs/nope").0, 404);
    assert_eq!(s.get("/api/runs/nope/tasks/x/logs").0, 404);
    assert_eq!(s.post("/api/runs/nope/cancel", t, "").0, 404);
    assert_eq!(s.get("/api/nothing-here").0, 404);
    assert_eq!(s.get("/api/runs?status=bogus").0, 400);
    assert_eq!(s.get("/api/runs?limit=abc").0, 400);
    let id = s.trigger(t, "hello");
    s.wait_for(&id, "succeeded", Duration::from_secs(30));
    let (code, err) = s.post(&format!("/api/runs/{id}/tasks/greet/retry"), t, "");
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        s.post(&format!("/api/runs/{id}/tasks/nope/retry"), t, "").0,
        404
    );
    assert!(!s.saw("panicked"), "{:?}", s.lines);
}

#[test]
fn without_a_token_serve_listens_on_loopback_only() {
    let site = Site::new();
    let out = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .args(["serve", "--listen", "0.0.0.0:0", "--workflows"])
        .arg(site.path("workflows"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a token"));
}

#[test]
fn a_delayed_run_survives_a_restart_and_fires_once() {
    let site = Site::new();
    site.plugin("echo");
    site.plugin("noop");
    site.workflow("hello.yaml", HELLO);
    let mut s = site.serve(&[]);
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let (code, body) = s.post(
        "/api/runs",
        None,
        &json!({"workflow": "hello", "at": at.to_rfc3339()}).to_string(),
    );
    assert_eq!(code, 201, "{body}");
    let id = body["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/api/runs/{id}")).1["status"], "pending");
    assert_eq!(s.stop(), Some(0));
    // Also one from the command line while no server runs.
    let out = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .args(["trigger", "hello", "--in", "1s", "--workflows"])
        .arg(site.path("workflows"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let s = site.serve(&[]);
    s.wait_for(&id, "succeeded", Duration::from_secs(30));
    s.wait_for(&cli_id, "succeeded", Duration::from_secs(30));
    let (_, runs) = s.get("/api/runs");
    let ids: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "each trigger started one run: {ids:?}");
    // After another restart the time of the last success is known before any new run.
    let mut s = s;
    assert_eq!(s.stop(), Some(0));
    let s = site.serve(&[]);
    let (code, metrics) = answer(ureq::get(&s.url("/metrics")).call());
    assert_eq!(code, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("bulkhead_last_success_timestamp_seconds{workflow=\"hello\"} 1"),
        "{text}"
    );
}

#[test]
fn plugins_and_workflows_are_hot_added_and_a_broken_plugin_keeps_the_good_version() {
    let site = Site::new();
    let s = site.serve(&[]);
    site.plugin("echo");
    site.plugin("noop");
    site.workflow("hello.yaml", HELLO);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = s.get("/api/workflows");
        if list["workflows"].as_array().is_some_and(|w| w.len() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new workflow never appeared: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let id = s.trigger(None, "hello");
    s.wait_for(&id, "succeeded", Duration::from_secs(30));

    // The plugin file is replaced by something that does not compile.
    std::fs::write(site.path("plugins/echo.part"), b"\0asm\x01\0\0\0garbage").unwrap();
    std::fs::rename(
        site.path("plugins/echo.part"),
        site.path("plugins/echo.wasm"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, plugins) = s.get("/api/plugins");
        let echo = plugins
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "echo")
            .cloned()
            .unwrap_or_default();
        if echo["error"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken plugin was not noticed: {plugins}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, list) = s.get("/api/workflows");
    assert!(
        list["workflows"][0]["error"]
            .as_str()
            .unwrap()
            .contains("echo"),
        "{list}"
    );
    let id = s.trigger(None, "hello");
    let report = s.wait_for(&id, "succeeded", Duration::from_secs(30));
    assert_eq!(
        report["tasks"]["greet"]["output"]["received"]["params"]["who"], "world",
        "the good version served"
    );
    let (_, metrics) = answer(ureq::get(&s.url("/metrics")).call());
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("bulkhead_load_errors{what=\"plugin\"} 1"));

    // A broken workflow file is reported; the last good version stays active.
    site.workflow(
        "hello.yaml",
        "name: hello\ntasks:\n  greet: {plugin: echo, neds: []}\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = s.get("/api/workflows");
        if list["broken_files"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("neds"))
        {
            assert_eq!(
                list["workflows"][0]["tasks"], 2,
                "still the last good version"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken workflow was not noticed: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a server whose clock reads `start`, waits `wait`, stops it.
fn serve_at(site: &Site, start: &str, wait: Duration) -> Served {
    let mut s = site.serve(&["--clock-start", start]);
    std::thread::sleep(wait);
    s.stop();
    s
}

fn run_count(site: &Site) -> usize {
    let out = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .args(["runs", "--json", "--limit", "0"])
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn cron_catch_up_follows_the_policy() {
    for (catchup, expected) in [("none", 0), ("latest", 1), ("all", 4)] {
        let site = Site::new();
        site.plugin("noop");
        site.workflow("tick.yaml", &format!("name: tick\nschedule: '@hourly'\ncatchup: {catchup}\ntasks:\n  t: {{plugin: noop}}\n"));
        // 11:00 fires on time, two seconds after start.
        serve_at(&site, "2030-01-01T10:59:58Z", Duration::from_secs(5));
        assert_eq!(run_count(&site), 1, "{catchup}: the on-time fire");
        // Down until 15:30: 12:00, 13:00, 14:00 and 15:00 were missed.
        let s = serve_at(&site, "2030-01-01T15:30:00Z", Duration::from_secs(3));
        assert_eq!(run_count(&site), 1 + expected, "{catchup}: {:?}", s.lines);
        // A restart at the same time fires nothing twice.
        serve_at(&site, "2030-01-01T15:30:01Z", Duration::from_secs(1));
        assert_eq!(run_count(&site), 1 + expected, "{catchup}: no double fire");
    }
}

#[test]
fn an_interrupted_run_is_resumed_when_serve_starts() {
    let site = Site::new();
    site.plugin("sleep");
    site.workflow("nap.yaml", "name: nap\ntasks:\n  a: {plugin: sleep, params: {ms: 1500}}\n  b: {plugin: sleep, needs: [a], params: {ms: 10}}\n");
    let mut child = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .env("BULKHEAD_PLUGINS", site.path("plugins"))
        .arg("run")
        .arg(site.path("workflows/nap.yaml"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_for_attempt(&site.path("state.db"), "a");
    child.kill().unwrap();
    child.wait().unwrap();
    let s = site.serve(&[]);
    let (_, runs) = s.get("/api/runs");
    let id = runs["runs"][0]["run_id"].as_str().unwrap().to_string();
    let report = s.wait_for(&id, "succeeded", Duration::from_secs(30));
    assert_eq!(report["tasks"]["a"]["history"][0]["status"], "interrupted");
}

#[test]
fn a_thousand_api_triggers_each_run_exactly_once() {
    let site = Site::new();
    site.plugin("noop");
    site.workflow("one.yaml", "name: one\ntasks:\n  t: {plugin: noop}\n");
    let s = site.serve(&["--token", "k"]);
    let base = s.base.clone();
    let started = Instant::now();
    let triggered: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let base = base.clone();
                scope.spawn(move || {
                    let agent = ureq::Agent::new_with_defaults();
                    (0..125)
                        .map(|_| {
                            let mut r = agent
                                .post(&format!("{base}/api/runs"))
                                .header("Authorization", "Bearer k")
                                .content_type("application/json")
                                .send(r#"{"workflow": "one"}"#)
                                .expect("trigger");
                            let body: Value = r.body_mut().read_json().unwrap();
                            (
                                body["run_id"].as_str().unwrap().to_string(),
                                body["due_at"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let triggered_in = started.elapsed();
    let ids: Vec<String> = triggered.iter().map(|(id, _)| id.clone()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1000, "every trigger got its own run id");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut latencies = Vec::new();
    for (id, due_at) in &triggered {
        let report = loop {
            let (_, r) = s.get(&format!("/api/runs/{id}"));
            if r["status"] == "succeeded" {
                break r;
            }
            assert!(Instant::now() < deadline, "run {id} did not finish: {r}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // From the trigger (the server's clock when it answered 201) to the run's first attempt.
        let trigger = chrono::DateTime::parse_from_rfc3339(due_at).unwrap();
        let attempt = chrono::DateTime::parse_from_rfc3339(
            report["tasks"]["t"]["history"][0]["started_at"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        latencies.push((attempt.timestamp_millis() - trigger.timestamp_millis()) as f64);
    }
    let out = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .args(["runs", "--json", "--limit", "0"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        runs.as_array().unwrap().len(),
        1000,
        "exactly one run per trigger, nothing lost"
    );
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    eprintln!(
        "1000 API triggers from 8 clients in {triggered_in:?}; trigger to first attempt start: p50 {} ms, p99 {} ms",
        pct(0.5),
        pct(0.99)
    );
}

#[test]
fn a_running_server_adopts_a_run_whose_host_died_without_a_restart() {
    // A `bulkhead run` on the server's store is killed mid-run. The server, already running,
    // finds the run (its holder is a dead process on this machine) within its reaping interval
    // and finishes it, without redoing the task that had succeeded.
    let site = Site::new();
    site.plugin("sleep");
    site.workflow(
        "long.yaml",
        "name: long\ntasks:\n  first: {plugin: sleep, params: {ms: 10}}\n  second: {plugin: sleep, needs: [first], params: {ms: 3000}}\n",
    );
    let mut s = site.serve(&[]);
    let mut child = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .env("BULKHEAD_PLUGINS", site.path("plugins"))
        .arg("run")
        .arg(site.path("workflows/long.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = crate::support::wait_for_attempt(&site.path("state.db"), "second");
    child.kill().unwrap(); // SIGKILL: no chance to mark the run interrupted.
    child.wait().unwrap();
    let report = s.wait_for(&id, "succeeded", Duration::from_secs(40));
    assert_eq!(report["tasks"]["first"]["attempts"], 1, "{report}");
    assert!(
        s.saw("adopting a run whose host stopped renewing its lease"),
        "the server said why it took the run"
    );
    assert_eq!(s.stop(), Some(0));
}
