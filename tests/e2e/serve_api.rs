//! The API's edges against a real server: no-token mode refusing what a hostile web page can
//! send, delayed runs as first-class pending runs, and JSON errors for every refusal.

use crate::serve::Site;
use crate::support::bulkhead;
use serde_json::{json, Value};
use std::io::{Read, Write};

const HELLO: &str = "name: hello\ntasks:\n  greet: {plugin: echo}\n";

/// A site with the echo plugin and the `hello` workflow.
fn hello_site() -> Site {
    let site = Site::new();
    site.plugin("echo");
    site.workflow("hello.yaml", HELLO);
    site
}

/// Sends one raw HTTP/1.1 request (so that `Host` and `Origin` are exactly what a browser
/// would send); returns the status and the body as JSON.
fn raw(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

#[test]
fn without_a_token_requests_a_web_page_could_send_are_refused() {
    let site = hello_site();
    let s = site.serve(&[]);
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let body = r#"{"workflow": "hello"}"#;
    let json = ("Content-Type", "application/json");

    // A form or text/plain POST (no CORS preflight) is refused.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (code, answer) = raw(&s.base, "POST", "/api/runs", &[("Content-Type", ct)], body);
        assert_eq!(code, 415, "{ct}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{answer}"
        );
    }
    let (code, answer) = raw(&s.base, "POST", "/api/runs", &[], body);
    assert_eq!(code, 415, "no content type: {answer}");
    // A cross-origin request is refused, reads included.
    for (method, path) in [("POST", "/api/runs"), ("GET", "/api/runs")] {
        let (code, answer) = raw(
            &s.base,
            method,
            path,
            &[json, ("Origin", "https://evil.example")],
            body,
        );
        assert_eq!(code, 403, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("evil.example"),
            "{answer}"
        );
    }
    // DNS rebinding: a foreign name in Host is refused.
    let evil_host = format!("rebind.evil.example:{port}");
    let (code, answer) = raw(&s.base, "GET", "/api/runs", &[("Host", &evil_host)], "");
    assert_eq!(code, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("rebind.evil.example"),
        "{answer}"
    );
    let (code, _) = raw(&s.base, "GET", "/", &[("Host", &evil_host)], "");
    assert_eq!(code, 403, "the UI too");

    // The server's own origin, and localhost, are served.
    let own = s.base.clone();
    let (code, answer) = raw(
        &s.base,
        "POST",
        "/api/runs",
        &[json, ("Origin", &own)],
        body,
    );
    assert_eq!(code, 201, "{answer}");
    let localhost = format!("localhost:{port}");
    let (code, answer) = raw(
        &s.base,
        "GET",
        "/api/runs",
        &[
            ("Host", &localhost),
            ("Origin", &format!("http://{localhost}")),
        ],
        "",
    );
    assert_eq!(code, 200, "{answer}");
}

#[test]
fn a_delayed_run_is_listed_pending_and_can_be_cancelled_before_it_is_due() {
    let site = hello_site();
    let s = site.serve(&["--token", "t"]);
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (code, body) = s.post(
        "/api/runs",
        Some("t"),
        &json!({"workflow": "hello", "at": at_text}).to_string(),
    );
    assert_eq!(code, 201, "{body}");
    let api_run = body["run_id"].as_str().unwrap().to_string();
    // One through the CLI too.
    let out = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .env("BULKHEAD_WORKFLOWS", site.path("workflows"))
        .args(["trigger", "hello", "--in", "2h"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_run = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let (code, page) = s.get("/api/runs?status=pending");
    assert_eq!(code, 200);
    let ids: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![cli_run.as_str(), api_run.as_str()], "{page}");
    let listed = &page["runs"][1];
    assert_eq!(listed["status"], "pending");
    assert_eq!(listed["started_at"], Value::Null);
    assert_eq!(listed["due_at"], at_text.as_str());
    let (_, report) = s.get(&format!("/api/runs/{api_run}"));
    assert_eq!(report["status"], "pending");
    assert_eq!(
        report["started_at"],
        Value::Null,
        "no start before it starts: {report}"
    );
    assert_eq!(report["due_at"], at_text.as_str());

    // `bulkhead runs` shows them as pending with their due time.
    let out = site.cli(&["runs", "--status", "pending"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&api_run) && text.contains(&cli_run) && text.contains("due "),
        "{text}"
    );

    let out = site.cli(&["show", "--json", &cli_run]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(shown["status"], "pending", "{shown}");
    assert_eq!(shown["started_at"], Value::Null, "{shown}");
    assert!(shown["due_at"].is_string(), "{shown}");

    // Cancel one through the API, one through the CLI: both end cancelled and never start.
    let (code, body) = s.post(&format!("/api/runs/{api_run}/cancel"), Some("t"), "");
    assert_eq!(
        (code, body["status"].clone()),
        (202, json!("cancelled")),
        "{body}"
    );
    let out = site.cli(&["cancel", &cli_run]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for run in [&api_run, &cli_run] {
        let (_, report) = s.get(&format!("/api/runs/{run}"));
        assert_eq!(report["status"], "cancelled", "{report}");
        assert!(report["finished_at"].is_string(), "{report}");
    }
    let (_, page) = s.get("/api/runs?status=pending");
    assert_eq!(page["runs"], json!([]));
    let (code, body) = s.post(&format!("/api/runs/{api_run}/cancel"), Some("t"), "");
    assert_eq!(code, 409, "cancelling twice: {body}");
}

#[test]
fn odd_times_and_bad_requests_get_json_errors_naming_the_field() {
    let site = hello_site();
    let s = site.serve(&["--token", "t"]);
    let past = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    for (at, says) in [
        (past.as_str(), "in the past"),
        ("3000-01-01T00:00:00Z", "a year ahead"),
        ("tomorrow", "RFC 3339"),
        ("+275760-09-13T00:00:00Z", "RFC 3339"),
    ] {
        let (code, body) = s.post(
            "/api/runs",
            Some("t"),
            &json!({"workflow": "hello", "at": at}).to_string(),
        );
        assert_eq!(code, 400, "{at}: {body}");
        let e = body["error"].as_str().unwrap();
        assert!(e.contains("field `at`") && e.contains(says), "{at}: {e}");
    }
    // A little clock skew is tolerated.
    let skewed = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc3339();
    let (code, body) = s.post(
        "/api/runs",
        Some("t"),
        &json!({"workflow": "hello", "at": skewed}).to_string(),
    );
    assert_eq!(code, 201, "{body}");

    let (code, body) = s.get("/api/runs?cursor=not-a-run-id");
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("cursor"), "{body}");
    let (code, body) = s.get("/api/runs?limit=0");
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");

    // Refusals axum makes itself are JSON too.
    let big = format!(
        r#"{{"workflow": "hello", "params": {{"x": "{}"}}}}"#,
        "a".repeat(70_000)
    );
    let (code, body) = s.post("/api/runs", Some("t"), &big);
    assert_eq!(code, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("KiB"), "{body}");
    let (code, body) = raw(
        &s.base,
        "DELETE",
        "/api/runs",
        &[("Authorization", "Bearer t")],
        "",
    );
    assert_eq!(code, 405, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (code, body) = raw(
        &s.base,
        "POST",
        "/api/runs",
        &[
            ("Authorization", "Bearer t"),
            ("Content-Type", "text/plain"),
        ],
        r#"{"workflow": "hello"}"#,
    );
    assert_eq!(code, 415, "{body}");
}

#[test]
fn the_token_is_checked_strictly_and_its_scheme_loosely() {
    let site = hello_site();
    for bad in ["", "   ", " padded "] {
        let out = bulkhead()
            .env("BULKHEAD_STORE", site.path("state.db"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token",
                bad,
                "--workflows",
            ])
            .arg(site.path("workflows"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "token {bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
    }
    let s = site.serve(&["--token", "s3cret"]);
    let body = r#"{"workflow": "hello"}"#;
    let json = ("Content-Type", "application/json");
    for (auth, want) in [
        ("bearer s3cret", 201),
        ("BEARER s3cret", 201),
        ("Bearer s3cre", 401),
        ("Bearer s3cret-and-more", 401),
        ("Basic s3cret", 401),
        ("s3cret", 401),
    ] {
        let (code, answer) = raw(
            &s.base,
            "POST",
            "/api/runs",
            &[json, ("Authorization", auth)],
            body,
        );
        assert_eq!(code, want, "{auth}: {answer}");
    }
}

/// `bulkhead_reloads_total` of a live server.
fn reloads(s: &crate::serve::Served) -> u64 {
    let (_, text) = crate::serve::answer(ureq::get(&s.url("/metrics")).call());
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("bulkhead_reloads_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("bulkhead_reloads_total") as u64
}

#[test]
fn the_folders_reload_only_on_changes_and_never_pile_up() {
    let site = hello_site();
    let s = site.serve(&[]);
    // Idle: the server's own reads of its folders are not changes.
    let before = reloads(&s);
    let idle_until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < idle_until {
        let (code, _) = s.get("/healthz");
        assert_eq!(code, 200);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let idle = reloads(&s) - before;
    assert!(
        idle <= 1,
        "{idle} reloads while idle (at most the periodic rescan)"
    );
    // A storm of 300 writes coalesces into a few reloads, and the API stays responsive.
    let before = reloads(&s);
    for i in 0..300 {
        std::fs::write(
            site.path("workflows/hello.yaml"),
            format!("{HELLO}# edit {i}\n"),
        )
        .unwrap();
        if i % 50 == 0 {
            let started = std::time::Instant::now();
            let (code, _) = s.get("/healthz");
            assert_eq!(code, 200);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "the API stalled"
            );
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, list) = s.get("/api/workflows");
        if list["workflows"][0]["hash"].is_string() && reloads(&s) > before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload after the writes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let storm = reloads(&s) - before;
    assert!((1..=30).contains(&storm), "{storm} reloads for 300 writes");
    let id = {
        let (code, body) = s.post("/api/runs", None, r#"{"workflow": "hello"}"#);
        assert_eq!(code, 201, "{body}");
        body["run_id"].as_str().unwrap().to_string()
    };
    s.wait_for(&id, "succeeded", std::time::Duration::from_secs(30));
}

#[test]
fn reads_can_require_the_token() {
    let site = hello_site();
    let s = site.serve(&["--token", "t", "--token-for-reads"]);
    for path in [
        "/api/runs",
        "/api/workflows",
        "/api/plugins",
        "/metrics",
        "/api/openapi.json",
    ] {
        let (code, body) = raw(&s.base, "GET", path, &[], "");
        assert_eq!(code, 401, "{path}: {body}");
        let (code, _) = raw(&s.base, "GET", path, &[("Authorization", "Bearer t")], "");
        assert_eq!(code, 200, "{path} with the token");
    }
    for path in ["/healthz", "/", "/ui.js", "/ui.css"] {
        let (code, _) = raw(&s.base, "GET", path, &[], "");
        assert_eq!(code, 200, "{path} stays public");
    }
    // On loopback without the flag, reads stay open.
    let open = site.serve(&["--token", "t"]);
    let (code, _) = raw(&open.base, "GET", "/api/runs", &[], "");
    assert_eq!(code, 200);
    // The flag without a token is an error.
    let out = bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-for-reads",
            "--workflows",
        ])
        .arg(site.path("workflows"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A workflow declaring typed run parameters.
const TYPED: &str = "name: typed
params:
  day: {type: string, required: true, description: the day to process}
  limit: {type: integer, default: 100}
  mode: {enum: [fast, full], default: fast}
  dry_run: {type: boolean, default: false}
tasks:
  show: {plugin: echo}
";

#[test]
fn typed_params_are_checked_at_trigger_and_their_defaults_filled_in() {
    let site = Site::new();
    site.plugin("echo");
    site.workflow("typed.yaml", TYPED);
    let s = site.serve(&["--token", "t"]);
    for (params, says) in [
        (
            json!({}),
            "parameter `day` (the day to process) is required",
        ),
        (
            json!({"day": "mon", "limit": "ten"}),
            "parameter `limit`: `ten` is not an integer",
        ),
        (
            json!({"day": "mon", "limit": 1.5}),
            "parameter `limit`: `1.5` is not an integer",
        ),
        (
            json!({"day": "mon", "mode": "slow"}),
            "`\"slow\"` is not one of \"fast\", \"full\"",
        ),
        (json!({"day": "mon", "dya": 1}), "did you mean `day`"),
        (json!({"day": 7}), "parameter `day`: `7` is not a string"),
    ] {
        let (code, body) = s.post(
            "/api/runs",
            Some("t"),
            &json!({"workflow": "typed", "params": params}).to_string(),
        );
        assert_eq!(code, 400, "{params}: {body}");
        let e = body["error"].as_str().unwrap();
        assert!(
            e.contains("field `params`") && e.contains(says),
            "{params}: {e}"
        );
    }
    // Nothing was recorded for the refused ones.
    let (_, page) = s.get("/api/runs?workflow=typed");
    assert_eq!(page["runs"].as_array().unwrap().len(), 0, "{page}");
    // A form's text for an integer and a boolean is read by the type; defaults fill the rest.
    let (code, body) = s.post(
        "/api/runs",
        Some("t"),
        &json!({"workflow": "typed", "params": {"day": "mon", "limit": "20", "dry_run": "true"}})
            .to_string(),
    );
    assert_eq!(code, 201, "{body}");
    let run = s.wait_for(
        body["run_id"].as_str().unwrap(),
        "succeeded",
        std::time::Duration::from_secs(60),
    );
    assert_eq!(
        run["tasks"]["show"]["output"]["received"]["run_params"],
        json!({"day": "mon", "limit": 20, "dry_run": true, "mode": "fast"}),
        "{run}"
    );
    // The workflow list carries the declarations, for the trigger form.
    let (_, list) = s.get("/api/workflows");
    let typed = &list["workflows"][0];
    assert_eq!(typed["params"]["day"]["required"], true, "{typed}");
    assert_eq!(typed["params"]["limit"]["default"], 100, "{typed}");
    assert_eq!(
        typed["params"]["mode"]["enum"],
        json!(["fast", "full"]),
        "{typed}"
    );
}

#[test]
fn run_and_trigger_read_param_text_by_its_declared_type_and_refuse_bad_values() {
    let site = Site::new();
    site.plugin("echo");
    site.workflow("typed.yaml", TYPED);
    let file = site.path("workflows/typed.yaml");
    let plugins = site.path("plugins");
    let workflows = site.path("workflows");
    let run = |params: &[&str]| {
        let mut args = vec![
            "run",
            file.to_str().unwrap(),
            "--json",
            "--plugins",
            plugins.to_str().unwrap(),
        ];
        for p in params {
            args.extend(["--param", p]);
        }
        site.cli(&args)
    };
    let out = run(&["day=2026-12-01", "limit=7", "mode=full"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["tasks"]["show"]["output"]["received"]["run_params"],
        json!({"day": "2026-12-01", "limit": 7, "mode": "full", "dry_run": false})
    );
    for (params, says) in [
        (
            vec!["limit=7"],
            "parameter `day` (the day to process) is required",
        ),
        (
            vec!["day=x", "limit=seven"],
            "parameter `limit`: `seven` is not an integer",
        ),
        (vec!["day=x", "dry_run=yes"], "`yes` is not a boolean"),
        (vec!["day=x", "limt=3"], "did you mean `limit`"),
    ] {
        let out = run(&params);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{params:?}: {stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("nothing ran"),
            "{params:?}: {stderr}"
        );
        assert!(!stderr.contains("run 0"), "no run was started: {stderr}");
    }
    // `bulkhead trigger` checks them too, before recording anything.
    let out = site.cli(&[
        "trigger",
        "typed",
        "--param",
        "limit=3",
        "--workflows",
        workflows.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("parameter `day`"), "{stderr}");
    let out = site.cli(&["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
    assert!(
        runs.as_array()
            .is_none_or(|r| r.iter().all(|r| r["status"] != "pending")),
        "nothing pending: {runs}"
    );
}

#[test]
fn a_running_attempts_log_is_read_while_it_is_written() {
    let site = Site::new();
    site.plugin("ticker");
    site.workflow(
        "ticking.yaml",
        "name: ticking\ntasks:\n  tick: {plugin: ticker, params: {n: 40, ms: 100}}\n",
    );
    let s = site.serve(&[]);
    let run = s.trigger(None, "ticking");
    let path = format!("/api/runs/{run}/tasks/tick/logs");
    // While it runs: the log so far, marked running, growing between reads.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let (code, body) = s.get(&path);
        // 404 until the trigger has become a run.
        assert!(code == 200 || code == 404, "{code}: {body}");
        if let Some(a) = body["attempts"].as_array().and_then(|a| a.first()) {
            if a["running"] == true {
                let log = a["log"].as_str().unwrap().to_string();
                if seen.last() != Some(&log) && log.contains("tick 1\n") {
                    seen.push(log);
                }
            }
        }
        if seen.len() >= 2 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    assert!(
        seen.len() >= 2,
        "never saw the log grow while the attempt ran: {seen:?}"
    );
    assert!(
        seen[1].len() > seen[0].len() && seen[1].starts_with(&seen[0]),
        "{seen:?}"
    );
    assert!(
        !seen[0].contains("tick 40"),
        "read before the end: {}",
        seen[0]
    );
    // Once it ended: the whole log from the store, no longer running.
    s.wait_for(&run, "succeeded", std::time::Duration::from_secs(60));
    let (_, body) = s.get(&path);
    let a = &body["attempts"][0];
    assert_eq!(a["running"], false, "{body}");
    assert!(a["log"].as_str().unwrap().contains("tick 40"), "{body}");
}
