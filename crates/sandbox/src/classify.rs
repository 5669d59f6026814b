//! The one place where what wasmtime reports becomes a [`FailureKind`] with a readable message.

use bulkhead_core::contract::Failure;
use bulkhead_core::contract::FailureKind;
use bulkhead_core::contract::Limits;
use bulkhead_core::contract::OutputJson;
use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use bulkhead_abi::EXIT_TRANSIENT;

/// How an attempt's call ended, with the side facts that decide its kind.
pub(super) struct Ended<'a> {
    pub result: wasmtime::Result<()>,
    pub stdout_overflow: bool,
    pub memory_refused: Option<u64>,
    pub limits: &'a Limits,
    pub log: &'a [u8],
}

/// Success, or the failure kind and message. Order matters: a plugin that hit its memory limit and
/// then aborted failed of `memory`, not of the abort; an output flood fails as `output_too_large`
/// however the plugin reacted to the refused write.
pub(super) fn classify(ended: Ended<'_>) -> Result<(), Failure> {
    let err = match ended.result {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let exit = err.downcast_ref::<I32Exit>().map(|e| e.0);
    if exit == Some(0) {
        return Ok(());
    }
    let limits = ended.limits;
    if ended.stdout_overflow {
        return Err(Failure::new(
            FailureKind::OutputTooLarge,
            format!(
                "wrote more than {} bytes to stdout (limits.max_output)",
                limits.max_output
            ),
        ));
    }
    if let Some(asked) = ended.memory_refused {
        return Err(Failure::new(
            FailureKind::Memory,
            format!(
                "asked for {} of linear memory, over its limit of {} (limits.memory)",
                human_bytes(asked),
                human_bytes(limits.memory)
            ),
        ));
    }
    if let Some(code) = exit {
        let last = last_line(ended.log)
            .map(|l| format!("; last log line: {l}"))
            .unwrap_or_default();
        let kind = if code == EXIT_TRANSIENT {
            FailureKind::Transient
        } else {
            FailureKind::Exit
        };
        return Err(Failure {
            kind,
            message: format!("exited with code {code}{last}"),
            exit_code: Some(code),
        });
    }
    Err(match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::new(
            FailureKind::Fuel,
            format!("used up its fuel budget of {} (limits.fuel)", limits.fuel),
        ),
        Some(Trap::Interrupt) => Failure::new(
            FailureKind::Timeout,
            format!(
                "ran past its timeout of {:?} (limits.timeout)",
                limits.timeout
            ),
        ),
        Some(Trap::StackOverflow) => Failure::new(
            FailureKind::Trap,
            format!(
                "stack overflow (the wasm stack is limited to {})",
                human_bytes(super::MAX_WASM_STACK as u64)
            ),
        ),
        Some(trap) => {
            let message = match panic_message(ended.log) {
                Some(panic) => format!("{panic} ({trap})"),
                None => trap.to_string(),
            };
            Failure::new(FailureKind::Trap, message)
        }
        // WASI refuses `proc_exit` codes of 126 and above (and negative ones) with an error
        // rather than an exit: it is still the plugin exiting with a failure code.
        None if err
            .chain()
            .any(|c| c.to_string().contains("invalid exit status")) =>
        {
            Failure::new(
            FailureKind::Exit,
                "exited with a code outside 0..=125 (WASI refuses such codes, so the code itself is not known)",
            )
        }
        // Not a trap of the plugin's code, not an exit: an error the host raised (a host call
        // that failed on the host's side). Blamed on the host, not retried by default.
        None => Failure::new(
            FailureKind::Host,
            format!("the host failed during the attempt: {}", root_message(&err)),
        ),
    })
}

/// stdout as the task's output: one JSON value, or `null` when empty; kept as its text.
pub fn parse_output(stdout: Vec<u8>) -> Result<OutputJson, Failure> {
    // Shared, not copied: the message is made from the same bytes only if the check fails.
    let stdout = bytes::Bytes::from(stdout);
    OutputJson::parse(stdout.clone()).map_err(|e| {
        let shown = String::from_utf8_lossy(&stdout[..stdout.len().min(80)]);
        Failure::new(
            FailureKind::InvalidOutput,
            format!("stdout is not one JSON value ({e}); it starts with {shown:?}"),
        )
    })
}

/// The message of an error with its causes, without wasmtime's backtrace noise.
pub(super) fn root_message(err: &wasmtime::Error) -> String {
    let text = format!("{err:#}");
    text.lines().next().unwrap_or_default().to_string()
}

/// A Rust panic prints `thread 'main' panicked at src/main.rs:3:5:` and then the message.
fn panic_message(log: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(log);
    let start = text.find("panicked at ")?;
    let rest = &text[start..];
    let mut lines = rest.lines();
    let head = lines.next()?.trim_end_matches(':');
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("note: ")).collect();
    Some(format!("{head}: {}", body.join(" ").trim()))
}

fn last_line(log: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(log);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    Some(line.chars().take(200).collect())
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_panic_message() {
        let log = b"starting\nthread 'main' panicked at src/main.rs:3:5:\nboom: bad row\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(log).as_deref(),
            Some("panicked at src/main.rs:3:5: boom: bad row")
        );
        assert_eq!(panic_message(b"all fine"), None);
    }

    #[test]
    fn output_is_one_json_value() {
        assert_eq!(
            parse_output(b"  \n".to_vec()).unwrap().value(),
            serde_json::Value::Null
        );
        assert_eq!(
            parse_output(b"{\"a\":1}\n".to_vec()).unwrap().value(),
            serde_json::json!({"a": 1})
        );
        let e = parse_output(b"{\"a\":1} extra".to_vec()).unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidOutput);
        assert_eq!(
            parse_output(b"hello".to_vec()).unwrap_err().kind,
            FailureKind::InvalidOutput
        );
    }

    #[test]
    fn exit_codes() {
        let limits = Limits::default();
        let ended = |code| Ended {
            result: Err(I32Exit(code).into()),
            stdout_overflow: false,
            memory_refused: None,
            limits: &limits,
            log: b"line one\nretry later\n",
        };
        assert_eq!(classify(ended(0)), Ok(()));
        let t = classify(ended(75)).unwrap_err();
        assert_eq!((t.kind, t.exit_code), (FailureKind::Transient, Some(75)));
        assert!(t.message.contains("retry later"));
        assert_eq!(classify(ended(3)).unwrap_err().kind, FailureKind::Exit);
        let refused = classify(Ended {
            result: Err(wasmtime::Error::msg(
                "exit with invalid exit status outside of [0..126)",
            )),
            stdout_overflow: false,
            memory_refused: None,
            limits: &limits,
            log: b"",
        })
        .unwrap_err();
        assert_eq!(refused.kind, FailureKind::Exit, "{}", refused.message);
        assert!(refused.message.contains("outside 0..=125"));
    }

    #[test]
    fn memory_refusal_wins_over_the_abort_it_caused() {
        let limits = Limits::default();
        let f = classify(Ended {
            result: Err(Trap::UnreachableCodeReached.into()),
            stdout_overflow: false,
            memory_refused: Some(128 << 20),
            limits: &limits,
            log: b"memory allocation of 100000000 bytes failed\n",
        })
        .unwrap_err();
        assert_eq!(f.kind, FailureKind::Memory);
        assert!(f.message.contains("128 MiB"), "{}", f.message);
    }
}
