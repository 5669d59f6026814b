//! What one client can take from the server: connections (in all and per client), time to
//! send a request header, and the cost of reading a huge run.

use crate::serve::Site;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `to` from the loopback address `from` (all of 127/8 is loopback on Linux,
/// so each address is another client to the server).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from((from, 0)))
            .expect("bind a loopback source address");
        let stream = socket.connect(to).await.expect("connect");
        stream.into_std().unwrap()
    })
}

/// Waits until the server closes `stream` (or sends something and then closes); returns how
/// long it took and what it sent.
fn until_closed(mut stream: TcpStream, within: Duration) -> (Duration, String) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection within {within:?}: {e}"),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

/// One request on a new connection from `from`; the status line's code and the whole answer.
fn request_from(from: [u8; 4], to: SocketAddr, path: &str) -> (u16, String) {
    let mut s = connect_from(from, to);
    s.set_nonblocking(false).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (_, text) = until_closed(s, Duration::from_secs(30));
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[test]
fn idle_and_half_open_connections_are_closed_after_the_header_timeout() {
    let site = Site::new();
    let s = site.serve(&["--header-timeout", "1s"]);
    let to = addr(&s.base);
    // Sends nothing at all.
    let silent = connect_from([127, 0, 0, 1], to);
    // Sends half a header and stops (slowloris).
    let mut half = connect_from([127, 0, 0, 1], to);
    half.set_nonblocking(false).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // A whole request on a kept-alive connection, then silence.
    let mut kept = connect_from([127, 0, 0, 1], to);
    kept.set_nonblocking(false).unwrap();
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: {to}\r\n\r\n").unwrap();
    for (name, stream) in [("silent", silent), ("half", half), ("kept", kept)] {
        let (took, text) = until_closed(stream, Duration::from_secs(20));
        assert!(
            took < Duration::from_secs(15),
            "{name}: closed after {took:?}"
        );
        if name == "kept" {
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "{name} got its answer first: {text}"
            );
        }
    }
    // The server is still there for everyone else.
    let (code, _) = request_from([127, 0, 0, 1], to, "/healthz");
    assert_eq!(code, 200);
}

#[test]
fn one_client_cannot_take_every_connection() {
    let site = Site::new();
    let s = site.serve(&[
        "--max-connections",
        "6",
        "--max-connections-per-client",
        "4",
        "--header-timeout",
        "60s",
    ]);
    let to = addr(&s.base);
    let hog: Vec<TcpStream> = (0..4).map(|_| connect_from([127, 0, 0, 1], to)).collect();
    // The accept loop takes connections in order; a request on the fifth shows it counted them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let (code, text) = request_from([127, 0, 0, 1], to, "/healthz");
        if code == 429 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the fifth connection was not refused: {code} {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    let body = refused.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let body: Value = serde_json::from_str(body).expect("a JSON error body");
    assert!(
        body["error"].as_str().unwrap().contains("one client"),
        "{body}"
    );
    // Another client is served.
    let (code, _) = request_from([127, 0, 0, 2], to, "/healthz");
    assert_eq!(code, 200, "another client is not held up by the first");
    // The server as a whole: 4 + 2 connections are all it takes.
    let more: Vec<TcpStream> = (0..2).map(|_| connect_from([127, 0, 0, 2], to)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, text) = request_from([127, 0, 0, 3], to, "/healthz");
        if code == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a seventh connection was not refused: {code} {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Closing connections gives the slots back.
    drop(hog);
    drop(more);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, _) = request_from([127, 0, 0, 1], to, "/healthz");
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots did not come back: {code}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(serde::Deserialize)]
struct Page {
    tasks: indexmap::IndexMap<String, Value>,
    next_task_after: Option<String>,
}

fn get_text(url: &str) -> (u16, String) {
    let mut resp = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("request");
    let code = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .expect("the whole body");
    (code, text)
}

#[test]
fn a_huge_run_is_read_in_pages_and_never_blocks_the_server() {
    const TASKS: usize = 20_000;
    let site = Site::new();
    site.plugin("noop");
    site.plugin("logflood");
    let mut yaml = String::from("name: huge\ntasks:\n  flood: {plugin: logflood}\n");
    for i in 0..TASKS - 1 {
        yaml.push_str(&format!("  t{i}: {{plugin: noop}}\n"));
    }
    std::fs::write(site.path("huge.yaml"), yaml).unwrap();
    let out = crate::support::bulkhead()
        .env("BULKHEAD_STORE", site.path("state.db"))
        .env("BULKHEAD_PLUGINS", site.path("plugins"))
        .args(["run", "--json"])
        .arg(site.path("huge.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = report["run_id"].as_str().unwrap().to_string();
    assert_eq!(report["tasks"].as_object().unwrap().len(), TASKS);
    let log_len = report["tasks"]["flood"]["log"].as_str().unwrap().len();
    assert!(
        (1 << 20..(1 << 20) + 200).contains(&log_len),
        "the --json report carries the log (1 MiB and a marker), read back from the store: {log_len}"
    );
    assert_eq!(report["tasks"]["flood"]["output"]["ok"], true);

    let s = site.serve(&[]);
    // Three whole reports at once, while /healthz is asked: it answers at once each time.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let url = s.url(&format!("/api/runs/{id}"));
            std::thread::spawn(move || get_text(&url))
        })
        .collect();
    let mut slowest = Duration::ZERO;
    while !readers.iter().all(|r| r.is_finished()) {
        let started = Instant::now();
        let (code, _) = s.get("/healthz");
        assert_eq!(code, 200);
        slowest = slowest.max(started.elapsed());
    }
    for r in readers {
        let (code, text) = r.join().unwrap();
        assert_eq!(code, 200);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["tasks"].as_object().unwrap().len(), TASKS);
    }
    assert!(
        slowest < Duration::from_secs(2),
        "/healthz waited {slowest:?} behind the reports"
    );

    // Pages: in file order, each at most the limit, together every task once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => format!("/api/runs/{id}?task_limit=7000"),
            Some(a) => format!("/api/runs/{id}?task_limit=7000&task_after={a}"),
        };
        let (code, text) = get_text(&s.url(&path));
        assert_eq!(code, 200, "{text}");
        // In the order the server wrote them (a JSON object read into a map would sort them).
        let page: Page = serde_json::from_str(&text).unwrap();
        assert!(page.tasks.len() <= 7000 && !page.tasks.is_empty());
        seen.extend(page.tasks.keys().cloned());
        match page.next_task_after {
            Some(next) => {
                assert_eq!(Some(&next), seen.last());
                after = Some(next);
            }
            None => break,
        }
    }
    let mut expected = vec!["flood".to_string()];
    expected.extend((0..TASKS - 1).map(|i| format!("t{i}")));
    assert_eq!(seen, expected);
    let (code, body) = s.get(&format!("/api/runs/{id}?task_limit=0"));
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("task_limit"));
    let (code, body) = s.get(&format!("/api/runs/{id}?task_after=nope"));
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("task_after"));

    // A task's logs, capped.
    let (code, logs) = s.get(&format!("/api/runs/{id}/tasks/flood/logs?max_bytes=1000"));
    assert_eq!(code, 200, "{logs}");
    let first = &logs["attempts"][0];
    assert_eq!(first["truncated"], true);
    assert!(first["log"].as_str().unwrap().len() <= 1000);
    let (_, logs) = s.get(&format!("/api/runs/{id}/tasks/flood/logs"));
    assert_eq!(logs["attempts"][0]["log"].as_str().unwrap().len(), log_len);
    assert_eq!(
        logs["attempts"][0]["truncated"], false,
        "a log at the default cap fits the default"
    );
    let (code, _) = s.get(&format!("/api/runs/{id}/tasks/flood/logs?max_bytes=0"));
    assert_eq!(code, 400);
}
