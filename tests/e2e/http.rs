//! Outgoing HTTP from a component: denied unless granted, and within a grant only the allowed
//! origins, addresses, request count, response size and time. A local server on 127.0.0.1 (and
//! on 127.0.0.2, and on a second port) records what reached it, so a refusal is shown to have
//! stopped the request in the host, not in the network.

use crate::support::Case;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one request that reached the server was: the local address it came in on, and its path.
type Hits = Arc<Mutex<Vec<(SocketAddr, String)>>>;

/// Serves on every loopback address at `port` (0: any): `/ok`, `/big` (2 MiB), `/slow` (answers
/// after 5 s), `/redirect-ok` and `/redirect-denied` (to 127.0.0.2).
fn serve(listener: TcpListener, hits: Hits) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let hits = hits.clone();
            std::thread::spawn(move || answer(stream, hits));
        }
    });
}

fn answer(mut stream: TcpStream, hits: Hits) {
    let local = stream.local_addr().expect("local addr");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    hits.lock().unwrap().push((local, path.clone()));
    let port = local.port();
    let (status, extra, body) = match path.split('?').next().unwrap_or("") {
        "/ok" => ("200 OK", String::new(), b"hello".to_vec()),
        "/big" => ("200 OK", String::new(), vec![b'x'; 2 << 20]),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(5));
            ("200 OK", String::new(), b"late".to_vec())
        }
        "/redirect-ok" => (
            "302 Found",
            format!("Location: http://127.0.0.1:{port}/ok\r\n"),
            Vec::new(),
        ),
        "/redirect-denied" => (
            "302 Found",
            format!("Location: http://127.0.0.2:{port}/ok\r\n"),
            Vec::new(),
        ),
        _ => ("404 Not Found", String::new(), Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

fn results(task: &Value) -> &Vec<Value> {
    task["output"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {task}"))
}

#[test]
fn outgoing_http_reaches_only_what_the_grant_allows_within_its_bounds() {
    let hits: Hits = Arc::default();
    // One port on 127.0.0.1 and 127.0.0.2, and a second port on 127.0.0.1 that no grant names.
    let main = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = main.local_addr().unwrap().port();
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other_port = other.local_addr().unwrap().port();
    serve(main, hits.clone());
    serve(other, hits.clone());
    let ok = format!("http://127.0.0.1:{port}");
    let allow = format!("allow: [\"{ok}\"]");
    let case = Case::new(&format!(
        "name: http
tasks:
  allowed: {{plugin: fetch, params: {{urls: [\"{ok}/ok?key=secret\"]}}, http: {{{allow}}}}}
  redirect_ok: {{plugin: fetch, params: {{urls: [\"{ok}/redirect-ok\"]}}, http: {{{allow}}}}}
  denied_host: {{plugin: fetch, params: {{urls: [\"http://127.0.0.2:{port}/ok\"]}}, http: {{{allow}}}}}
  denied_port: {{plugin: fetch, params: {{urls: [\"http://127.0.0.1:{other_port}/ok\"]}}, http: {{{allow}}}}}
  denied_scheme: {{plugin: fetch, params: {{urls: [\"https://127.0.0.1:{port}/ok\"]}}, http: {{{allow}}}}}
  redirect_denied: {{plugin: fetch, params: {{urls: [\"{ok}/redirect-denied\"]}}, http: {{{allow}}}}}
  oversized: {{plugin: fetch, params: {{urls: [\"{ok}/big\"]}}, http: {{{allow}, max_response: 1MiB}}}}
  too_many: {{plugin: fetch, params: {{urls: [\"{ok}/ok\", \"{ok}/ok\", \"{ok}/ok\"]}}, http: {{{allow}, max_requests: 2}}}}
  slow: {{plugin: fetch, params: {{urls: [\"{ok}/slow\"]}}, http: {{{allow}, timeout: 300ms}}}}
  rebinding: {{plugin: fetch, params: {{urls: [\"http://localhost:{port}/ok\"]}}, http: {{allow: [\"http://localhost:{port}\"]}}}}
  ungranted: {{plugin: fetch, params: {{urls: [\"{ok}/ok\"]}}}}
  must_fail: {{plugin: fetch, params: {{urls: [\"http://127.0.0.2:{port}/ok\"], fail_on_error: true}}, http: {{{allow}}}}}
"
    ));
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1, "only must_fail fails: {}", ran.stderr);
    let log = |t: &str| ran.task(t)["log"].as_str().unwrap_or("").to_string();

    let allowed = &results(ran.task("allowed"))[0];
    assert_eq!(
        (allowed["status"].as_u64(), allowed["text"].as_str()),
        (Some(200), Some("hello")),
        "{allowed}"
    );
    let l = log("allowed");
    assert!(
        l.contains(r#""msg":"http request""#)
            && l.contains(r#""status":200"#)
            && l.contains(r#""bytes":5"#),
        "each request is logged: {l}"
    );
    assert!(
        l.contains("/ok?<query omitted>") && !l.contains("secret"),
        "the query is not logged: {l}"
    );
    assert_eq!(
        results(ran.task("redirect_ok"))[0]["status"],
        200,
        "an allowed redirect is followed"
    );

    for (task, rule) in [
        ("denied_host", "http://127.0.0.2:"),
        (
            "denied_port",
            &format!("http://127.0.0.1:{other_port} is not in http.allow"),
        ),
        (
            "denied_scheme",
            &format!("https://127.0.0.1:{port} is not in http.allow"),
        ),
        ("redirect_denied", "http://127.0.0.2:"),
        ("ungranted", "has no `http:` grant"),
    ] {
        let r = &results(ran.task(task))[0];
        assert!(
            r["error"]
                .as_str()
                .unwrap_or("")
                .contains("HttpRequestDenied"),
            "{task}: the plugin sees a denial: {r}"
        );
        let l = log(task);
        assert!(
            l.contains(r#""msg":"http request denied""#) && l.contains(rule),
            "{task}: the log names the rule ({rule}): {l}"
        );
    }
    let oversized = &results(ran.task("oversized"))[0];
    assert!(
        oversized["error"]
            .as_str()
            .unwrap_or("")
            .contains("body size exceeds limit: 1048576"),
        "{oversized}"
    );
    assert!(
        log("oversized").contains("longer than http.max_response = 1048576 bytes"),
        "{}",
        log("oversized")
    );
    let too_many = results(ran.task("too_many"));
    assert_eq!(
        (
            too_many[0]["status"].as_u64(),
            too_many[1]["status"].as_u64()
        ),
        (Some(200), Some(200))
    );
    assert!(
        too_many[2]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestDenied"),
        "{too_many:?}"
    );
    assert!(
        log("too_many").contains("http.max_requests = 2"),
        "{}",
        log("too_many")
    );
    let slow = &results(ran.task("slow"))[0];
    assert!(
        slow["error"].as_str().unwrap_or("").contains("Timeout"),
        "{slow}"
    );
    assert!(
        log("slow").contains("timed out (http.timeout)"),
        "{}",
        log("slow")
    );
    let rebinding = &results(ran.task("rebinding"))[0];
    assert!(
        rebinding["error"]
            .as_str()
            .unwrap_or("")
            .contains("DestinationIpProhibited"),
        "{rebinding}"
    );
    assert!(
        log("rebinding").contains("not a public address and not named by http.allow"),
        "{}",
        log("rebinding")
    );
    let (status, kind) = ran.ended("must_fail");
    assert_eq!(
        (status.as_str(), kind.as_str()),
        ("failed", "transient"),
        "{}",
        ran.task("must_fail")
    );

    // What reached the server: only the allowed requests, all on 127.0.0.1 at the granted port.
    let mut seen: Vec<String> = hits
        .lock()
        .unwrap()
        .iter()
        .map(|(local, path)| {
            assert_eq!(
                local.to_string(),
                format!("127.0.0.1:{port}"),
                "{path} came in where nothing is granted"
            );
            path.clone()
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        "/big",
        "/ok",
        "/ok",
        "/ok",
        "/ok?key=secret",
        "/redirect-denied",
        "/redirect-ok",
        "/slow",
    ];
    expected.sort();
    assert_eq!(seen, expected);
}
