//! Fuzz targets: each takes arbitrary bytes, runs one piece of the host that reads outside
//! input, and panics if an invariant breaks (a panic is the finding). The same targets run in
//! the test suite under a seeded mutation fuzzer for a bounded time (`fuzz::tests`), and under
//! cargo-fuzz (coverage-guided, `fuzz/`) for as long as one likes: docs/limits.md, "Fuzzing".
//!
//! - [`workflow`]: the YAML parser and validator: never panics; an error names the file and
//!   explains itself; a valid workflow's plan covers every task once, needs first.
//! - [`plugin_output`]: a plugin's stdout and stderr: output is one JSON value or an
//!   `invalid_output` failure; a capped pipe keeps exactly the bytes that fit; text printed for
//!   a terminal has no control characters left.
//! - [`trigger_body`]: a `POST /api/runs` body: a decoded trigger or a 400 that names the
//!   field.

use std::path::Path;

/// The workflow parser and validator on `bytes`.
pub fn workflow(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    match bulkhead_core::workflow::parse(text, file) {
        Ok(wf) => {
            assert!(!wf.tasks.is_empty(), "a valid workflow has tasks");
            let plan = wf.plan();
            let mut state = bulkhead_core::plan::RunState::new(&plan);
            let mut done = vec![false; plan.len()];
            let mut ran = 0;
            while let Some(t) = state.start_next() {
                for &n in plan.needs(t) {
                    assert!(done[n], "task {t} started before what it needs ({n})");
                }
                state.succeed(&plan, t);
                done[t] = true;
                ran += 1;
            }
            assert_eq!(ran, wf.tasks.len(), "every task runs once");
            assert!(state.is_finished());
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.contains("fuzz.yaml"),
                "the error names the file: {shown}"
            );
            assert!(
                shown.trim().len() > "fuzz.yaml".len() + 2,
                "and says something: {shown}"
            );
        }
    }
}

/// A plugin's stdout (as its output) and its stderr (through a capped pipe, then printed for a
/// terminal) on `bytes`. The first two bytes choose the cap and how writes are split.
pub fn plugin_output(bytes: &[u8]) {
    match bulkhead_sandbox::parse_output(bytes.to_vec()) {
        Ok(output) => {
            let value = output.value();
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let again: serde_json::Value =
                    serde_json::from_slice(bytes).expect("accepted output is JSON");
                assert_eq!(again, value);
            } else {
                assert!(value.is_null(), "empty output is null");
            }
        }
        Err(f) => {
            assert_eq!(f.kind, bulkhead_sandbox::FailureKind::InvalidOutput);
            assert!(
                f.message.starts_with("stdout is not one JSON value"),
                "{}",
                f.message
            );
        }
    }
    let (cap, split) = match bytes {
        [a, b, ..] => (*a as usize * 3, (*b as usize % 64) + 1),
        _ => (7, 1),
    };
    let (kept, overflowed) = bulkhead_sandbox::capture(cap as u64, bytes, split);
    let expected = &bytes[..bytes.len().min(cap)];
    assert_eq!(kept, expected, "the pipe keeps exactly what fits");
    assert_eq!(
        overflowed,
        bytes.len() > cap,
        "and says whether anything did not"
    );
    let text = String::from_utf8_lossy(bytes);
    let shown = bulkhead_core::text::printable(&text);
    assert!(
        !shown
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
        "no control character reaches the terminal: {shown:?}"
    );
}

/// A `POST /api/runs` body on `bytes`, decoded at a fixed time.
pub fn trigger_body(bytes: &[u8]) {
    const NOW: i64 = 1_795_000_000_000;
    match crate::api::DecodedTrigger::decode(bytes, NOW) {
        Ok(t) => {
            assert!(t.params.is_object(), "params are an object");
            if let Some(due) = t.due_at {
                assert!(due >= NOW - 5 * 60_000, "at most 5 minutes in the past");
                assert!(due <= NOW + 366 * 86_400_000, "at most 366 days ahead");
            }
        }
        Err(e) => {
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            let m = e.message();
            assert!(
                m.starts_with("invalid request body") || m.starts_with("field `"),
                "the refusal names the field or the body: {m}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    //! A seeded mutation fuzzer over the targets, for a bounded time: starting from real inputs
    //! (every workflow fixture and example, sample outputs and bodies), each case applies a few
    //! random edits (flip, insert a token of the format, delete, duplicate a line, splice two
    //! inputs). `BULKHEAD_FUZZ_SECS` sets the time per target (default 4), `BULKHEAD_FUZZ_SEED`
    //! the seed (default: from the clock, printed). A failure prints the seed and the input.

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::time::{Duration, Instant};

    fn corpus_dir(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                corpus_dir(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
    }

    fn mutate(rng: &mut StdRng, input: &[u8], corpus: &[Vec<u8>], tokens: &[&str]) -> Vec<u8> {
        let mut b = input.to_vec();
        for _ in 0..rng.random_range(1..=4) {
            let at = if b.is_empty() {
                0
            } else {
                rng.random_range(0..=b.len())
            };
            match rng.random_range(0..6) {
                0 if !b.is_empty() => {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
                1 => {
                    let t = tokens[rng.random_range(0..tokens.len())];
                    b.splice(at..at, t.bytes());
                }
                2 if !b.is_empty() => {
                    let end = (at + rng.random_range(1..16)).min(b.len());
                    let start = at.min(end);
                    b.drain(start..end);
                }
                3 => {
                    // Duplicate a line (duplicate keys, repeated tasks).
                    let text = b.clone();
                    let lines: Vec<&[u8]> = text.split(|&c| c == b'\n').collect();
                    let i = rng.random_range(0..lines.len());
                    let mut line = lines[i].to_vec();
                    line.push(b'\n');
                    let pos = b
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |p| p + 1);
                    b.splice(pos..pos, line);
                }
                4 => {
                    let other = &corpus[rng.random_range(0..corpus.len())];
                    let from = rng.random_range(0..=other.len());
                    let to = (from + rng.random_range(0..64)).min(other.len());
                    b.splice(at..at, other[from..to].iter().copied());
                }
                _ => {
                    let byte: u8 = rng.random();
                    b.insert(at, byte);
                }
            }
        }
        b
    }

    fn fuzz(name: &str, target: fn(&[u8]), corpus: Vec<Vec<u8>>, tokens: &[&str]) {
        assert!(!corpus.is_empty(), "{name}: no seed inputs");
        let secs: f64 = std::env::var("BULKHEAD_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4.0);
        let seed: u64 = std::env::var("BULKHEAD_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        let mut rng = StdRng::seed_from_u64(seed);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        for seed_input in &corpus {
            target(seed_input);
        }
        let mut cases = 0u64;
        while Instant::now() < deadline {
            let base = &corpus[rng.random_range(0..corpus.len())];
            let input = mutate(&mut rng, base, &corpus, tokens);
            let outcome = std::panic::catch_unwind(|| target(&input));
            if outcome.is_err() {
                panic!(
                    "fuzz target `{name}` failed (BULKHEAD_FUZZ_SEED={seed}, case {cases}) on:\n{}",
                    String::from_utf8_lossy(&input)
                );
            }
            cases += 1;
        }
        eprintln!("fuzz `{name}`: {cases} cases in {secs} s, seed {seed}, no failure");
        assert!(cases > 0 || secs == 0.0);
    }

    #[test]
    fn fuzz_the_workflow_parser_and_validator() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut corpus = Vec::new();
        corpus_dir(&root.join("tests/fixtures"), &mut corpus);
        corpus_dir(&root.join("workflows"), &mut corpus);
        let tokens = [
            "tasks:",
            "needs: [",
            "]",
            "plugin: ",
            "version: 1\n",
            "name: ",
            "limits: {",
            "}",
            "fuel: ",
            "memory: ",
            "timeout: ",
            "retry: {",
            "max_attempts: ",
            "backoff: exponential",
            "initial_delay: ",
            "mounts: [{host: ",
            "guest: /",
            "writable: true",
            "env: {",
            "optional: true",
            "priority: ",
            "concurrency: ",
            "max_active_runs: ",
            "schedule: [",
            "timezone: ",
            "catchup: ",
            "defaults:",
            "\n  ",
            "\n    ",
            ": ",
            "- ",
            "&a ",
            "*a",
            "<<: *a",
            "!!str ",
            "~",
            "null",
            "1e309",
            "-1",
            "18446744073709551616",
            "999999999y",
            "1ms",
            "4GiB",
            "0",
            "..",
            "\"",
            "'",
            "#",
            "\t",
            "\u{202e}",
            "\0",
        ];
        fuzz("workflow", super::workflow, corpus, &tokens);
    }

    #[test]
    fn fuzz_plugin_output_and_logs() {
        let corpus: Vec<Vec<u8>> = [
            &b"{\"rows\": [1, 2, 3], \"ok\": true}"[..],
            b"\"hello\"\n",
            b"  \n",
            b"[1e400, -0, 1.5e-10]",
            b"\x1b]0;title\x07\x1b]52;c;aGVsbG8=\x07log line\n",
            "text \u{202e}txet\u{2066} more\r\n".as_bytes(),
            b"\xff\xfe not utf-8",
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        let tokens = [
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "null",
            "\\u0000",
            "\\ud800",
            "\x1b[",
            "\x07",
            "\u{9b}",
            "\n",
            "\r",
            "9".repeat(400).leak(),
        ];
        fuzz("plugin_output", super::plugin_output, corpus, &tokens);
    }

    #[test]
    fn fuzz_api_trigger_bodies() {
        let corpus: Vec<Vec<u8>> = [
            &b"{\"workflow\": \"etl\"}"[..],
            b"{\"workflow\": \"etl\", \"params\": {\"day\": \"2026-11-23\"}}",
            b"{\"workflow\": \"etl\", \"at\": \"2026-11-23T02:00:00Z\"}",
            b"{\"workflow\": \"etl\", \"params\": null, \"at\": \"2026-11-23T02:00:00+01:00\"}",
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        let tokens = [
            "\"workflow\"",
            "\"params\"",
            "\"at\"",
            "\"extra\"",
            ": ",
            ",",
            "{",
            "}",
            "[",
            "]",
            "null",
            "1",
            "-",
            "\"9999-12-31T23:59:59Z\"",
            "\"+275760-09-13T00:00:00Z\"",
            "\"1970-01-01T00:00:00Z\"",
            "\"2026-13-01T00:00:00Z\"",
            "60",
            "Z",
            "+14:00",
            "-23:59",
            ".999999999",
        ];
        fuzz("trigger_body", super::trigger_body, corpus, &tokens);
    }
}
