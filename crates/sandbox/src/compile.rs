//! Compiling a plugin under bounds: its size, what it declares, and the time and memory the
//! compiler may spend on it.
//!
//! A module is first read cheaply (a pass over its sections, no code compiled) and refused if it
//! is too big or declares what the instance pool can never give it (a second memory, a memory
//! over 4 GiB, more tables or table elements than a slot holds). What is left is compiled in a
//! child process (the `bulkhead` binary itself, started with the hidden `__compile` command),
//! which sets its own limits on data memory and CPU time before it reads a byte; the parent
//! kills it at the wall-clock bound or when the host stops. A compile bomb, or a compiler bug,
//! then costs that child, never the host. Without a compiler executable (the library used on
//! its own, unit tests) modules are compiled in-process with the cheap checks only.

use crate::engine::{MAX_TABLES, MAX_TABLE_ELEMENTS};
use bulkhead_core::contract::MAX_MEMORY;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bounds on compiling one plugin. Documented in docs/limits.md ("Compiling plugins").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileBounds {
    /// Largest `.wasm` file accepted, in bytes.
    pub max_module_size: u64,
    /// Wall-clock time one compile may take.
    pub timeout: Duration,
    /// Data memory (heap) the compiling process may use, in bytes.
    pub memory: u64,
}

impl Default for CompileBounds {
    /// Room for real 20-30 MB Python and JavaScript builds (which compile in tens of seconds
    /// and well under 2 GiB), not for a bomb.
    fn default() -> Self {
        CompileBounds {
            max_module_size: 128 << 20,
            timeout: Duration::from_secs(120),
            memory: 4 << 30,
        }
    }
}

/// Where modules are compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiler {
    /// In this process: only the size and declaration checks bound it.
    InProcess,
    /// In a child process: this executable, run as `EXE __compile ...`.
    Child(PathBuf),
}

/// The smallest data memory a compiling child is given: the runtime, the engine and the
/// compiler's threads need some before the first function is compiled.
pub const MIN_COMPILE_MEMORY: u64 = 64 << 20;

/// Why a module file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be read (perhaps for now).
    Io(std::io::Error),
    /// It is over the module size bound; what to say about it.
    TooBig(String),
}

/// Reads a module file, refusing without reading it one over the size bound (so that a huge
/// file dropped into the plugin folder costs nothing), and reading at most the bound.
pub fn read_module(path: &std::path::Path, bounds: &CompileBounds) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let size = file.metadata().map_err(ReadError::Io)?.len();
    let too_big = |size: u64| ReadError::TooBig(over_size_bound(size, bounds));
    if size > bounds.max_module_size {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(bounds.max_module_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > bounds.max_module_size {
        // It grew while it was read.
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What to say of a module of `size` bytes, over the module size bound.
fn over_size_bound(size: u64, bounds: &CompileBounds) -> String {
    format!(
        "is {} but plugins may be at most {} (the module size bound; raise it with --max-module-size)",
        human(size),
        human(bounds.max_module_size)
    )
}

/// Refuses, without compiling anything, a module that is too big or that declares what no
/// instance-pool slot can hold. `bytes` is a core module (components are refused before).
pub fn precheck(bytes: &[u8], bounds: &CompileBounds) -> Result<(), String> {
    let size = bytes.len() as u64;
    if size > bounds.max_module_size {
        return Err(over_size_bound(size, bounds));
    }
    let mut memories = 0usize;
    let mut tables = 0usize;
    let bad = |e: wasmparser::BinaryReaderError| {
        format!("does not compile: not a valid WebAssembly module: {e}")
    };
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(bad)?;
        match payload {
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(bad)?;
                    if !matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                        return Err(format!(
                            "imports `{}.{}`, which is not a function: plugins may import only functions of `wasi_snapshot_preview1`",
                            import.module, import.name
                        ));
                    }
                }
            }
            wasmparser::Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(bad)?;
                    memories += 1;
                    if memories > 1 {
                        return Err("defines more than one memory; a plugin may have one".into());
                    }
                    if memory.memory64 {
                        return Err(
                            "defines a 64-bit memory; plugins use one 32-bit memory (wasm32)"
                                .into(),
                        );
                    }
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    let initial = memory.initial.saturating_mul(page);
                    if initial > MAX_MEMORY {
                        return Err(format!(
                            "asks for {} of memory at start; no plugin can have more than {}",
                            human(initial),
                            human(MAX_MEMORY)
                        ));
                    }
                }
            }
            wasmparser::Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(bad)?;
                    tables += 1;
                    if tables > MAX_TABLES as usize {
                        return Err(format!(
                            "defines more than {MAX_TABLES} tables; a plugin may have at most {MAX_TABLES}"
                        ));
                    }
                    if table.ty.initial > MAX_TABLE_ELEMENTS as u64 {
                        return Err(format!(
                            "asks for a table of {} elements at start; a table may have at most {MAX_TABLE_ELEMENTS}",
                            table.ty.initial
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why a bounded compile did not produce code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// The compiler refused the module (it is invalid); the compiler's message.
    Invalid(String),
    /// A bound was hit; what to say about it.
    Bound(String),
    /// The host is stopping.
    Interrupted,
    /// The child could not be started or failed on its own; what happened.
    Host(String),
}

/// Compiles `bytes` in a child process (`exe __compile`), with `bounds`; returns the
/// precompiled artifact (what `Engine::precompile_module` of an engine built by
/// `engine::build` makes). `stop` is polled while the child works: once it is set the child
/// is killed.
pub fn in_child(
    exe: &std::path::Path,
    bytes: &[u8],
    bounds: &CompileBounds,
    stop: &AtomicBool,
) -> Result<Vec<u8>, CompileError> {
    let memory = bounds.memory.max(MIN_COMPILE_MEMORY);
    // CPU time for every compiler thread together: the wall-clock bound on each core, and a
    // second more so that the parent's timer, which names the bound, usually fires first.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cpu = bounds
        .timeout
        .as_secs()
        .saturating_add(1)
        .saturating_mul(cores);
    let mut child = Command::new(exe)
        .arg("__compile")
        .arg(format!("--memory={memory}"))
        .arg(format!("--cpu-seconds={cpu}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CompileError::Host(format!(
                "cannot start the compiler process {}: {e}",
                exe.display()
            ))
        })?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CompileError::Host(
            "the compiler process has no pipes".into(),
        ));
    };
    let started = Instant::now();
    let outcome = std::thread::scope(|scope| {
        // A write to a dead child fails with a broken pipe; its exit status says why.
        scope.spawn(move || {
            let _ = stdin.write_all(bytes);
        });
        let out = scope.spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).map(|_| buf)
        });
        let err = scope.spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(64 << 10).read_to_end(&mut buf);
            // Keep the pipe flowing past the part kept, so the child never blocks on it.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            buf
        });
        let status = wait(&mut child, started + bounds.timeout, stop);
        let out = out.join().unwrap_or_else(|_| Ok(Vec::new()));
        let err = err.join().unwrap_or_default();
        (status, out, err)
    });
    let (status, out, err) = outcome;
    let message = String::from_utf8_lossy(&err).trim().to_string();
    match status {
        Waited::Stopped => Err(CompileError::Interrupted),
        Waited::TimedOut => Err(CompileError::Bound(format!(
            "compiling took longer than {} (the compile time bound; raise it with --compile-timeout)",
            humantime::format_duration(bounds.timeout)
        ))),
        Waited::Failed(e) => Err(CompileError::Host(format!("cannot wait for the compiler process: {e}"))),
        Waited::Exited(status) => {
            if status.success() {
                return out.map_err(|e| CompileError::Host(format!("cannot read what the compiler wrote: {e}")));
            }
            if status.code() == Some(EXIT_INVALID_MODULE) {
                return Err(CompileError::Invalid(message));
            }
            if let Some(kind) = limit_signal(status) {
                return Err(CompileError::Bound(match kind {
                    Limit::Memory => format!(
                        "compiling needed more than {} of memory (the compile memory bound; raise it with --compile-memory)",
                        human(memory)
                    ),
                    Limit::Cpu => format!(
                        "compiling used more than {cpu} s of CPU time (the compile time bound on {cores} cores; raise it with --compile-timeout)"
                    ),
                }));
            }
            // The allocator reports running out of memory on stderr before it aborts.
            if message.contains("memory allocation") || message.contains("out of memory") {
                return Err(CompileError::Bound(format!(
                    "compiling needed more than {} of memory (the compile memory bound; raise it with --compile-memory)",
                    human(memory)
                )));
            }
            Err(CompileError::Host(format!(
                "the compiler process failed ({status}){}",
                if message.is_empty() { String::new() } else { format!(": {message}") }
            )))
        }
    }
}

enum Waited {
    Exited(ExitStatus),
    TimedOut,
    Stopped,
    Failed(std::io::Error),
}

/// Waits for `child` until `deadline` or until `stop` is set, killing it in both cases.
fn wait(child: &mut std::process::Child, deadline: Instant, stop: &AtomicBool) -> Waited {
    // Short polls first (a small plugin compiles in milliseconds), then every 10 ms.
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Waited::Failed(e);
            }
        }
        let why = if stop.load(Ordering::SeqCst) {
            Some(Waited::Stopped)
        } else if Instant::now() >= deadline {
            Some(Waited::TimedOut)
        } else {
            None
        };
        if let Some(why) = why {
            let _ = child.kill();
            let _ = child.wait();
            return why;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

enum Limit {
    Memory,
    Cpu,
}

fn limit_signal(status: ExitStatus) -> Option<Limit> {
    use std::os::unix::process::ExitStatusExt;
    match status.signal()? {
        // SIGXCPU: the CPU limit.
        24 => Some(Limit::Cpu),
        // SIGABRT (Rust's allocation-failure handler) and SIGSEGV (a thread that cannot grow
        // its stack) are what running into the data limit looks like.
        6 | 11 => Some(Limit::Memory),
        _ => None,
    }
}

/// The child's exit code for a module the compiler refused.
pub const EXIT_INVALID_MODULE: i32 = 3;

/// The `__compile` command: sets the limits, reads a module on stdin, writes the precompiled
/// artifact on stdout. Exit 0 on success, [`EXIT_INVALID_MODULE`] for an invalid module (the
/// reason on stderr), 1 for anything else.
pub fn child_main(memory: u64, cpu_seconds: u64) -> i32 {
    use rustix::process::{setrlimit, Resource, Rlimit};
    // Limits first, before the engine or the module take any memory.
    let limits = [
        (Resource::Data, memory),
        (Resource::Cpu, cpu_seconds),
        // No core dumps of a compiler that ran out of room.
        (Resource::Core, 0),
    ];
    for (resource, value) in limits {
        let limit = Rlimit {
            current: Some(value),
            maximum: Some(value),
        };
        if let Err(e) = setrlimit(resource, limit) {
            eprintln!("cannot set the compiler's {resource:?} limit: {e}");
            return 1;
        }
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("cannot read the module: {e}");
        return 1;
    }
    // One slot: the pool's size is not part of what compiled code depends on, and a pool of
    // many slots would map gigabytes of tables that count against the data limit.
    let engine = match super::engine::build(1) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot set up the wasm engine: {e:#}");
            return 1;
        }
    };
    match engine.precompile_module(&bytes) {
        Ok(artifact) => match std::io::stdout().lock().write_all(&artifact) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write the compiled module: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("{}", super::classify::root_message(&e));
            EXIT_INVALID_MODULE
        }
    }
}

/// Loads what [`in_child`] returned.
#[allow(unsafe_code)]
pub(super) fn deserialize(
    engine: &wasmtime::Engine,
    artifact: &[u8],
) -> wasmtime::Result<wasmtime::Module> {
    // SAFETY: wasmtime requires bytes made by `precompile_module` of a compatible engine. These
    // came through a pipe that only this process holds, from this very executable's
    // `__compile` command, which builds its engine with the same `engine::build` (with one
    // slot: the pool's size changes nothing in compiled code); no plugin and no file is in
    // between. wasmtime checks the header's engine settings against this engine again.
    unsafe { wasmtime::Module::deserialize(engine, artifact) }
}

/// `12.3 MiB`, `512 KiB`, `100 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size {
            let whole = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{whole:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        for (id, body) in sections {
            m.push(*id);
            m.push(body.len() as u8);
            m.extend_from_slice(body);
        }
        m
    }

    #[test]
    fn a_module_over_the_size_bound_is_refused_naming_the_bound() {
        let bounds = CompileBounds {
            max_module_size: 4,
            ..CompileBounds::default()
        };
        let e = precheck(&module(&[]), &bounds).unwrap_err();
        assert!(
            e.contains("at most 4 B") && e.contains("--max-module-size"),
            "{e}"
        );
    }

    #[test]
    fn declarations_no_pool_slot_can_hold_are_refused_before_compiling() {
        let b = CompileBounds::default();
        // Memory section: 2 memories.
        let two = module(&[(5, vec![2, 0, 1, 0, 1])]);
        assert!(precheck(&two, &b)
            .unwrap_err()
            .contains("more than one memory"));
        // One memory with 65,537 pages (just over 4 GiB) at start: flags 0, LEB128 initial.
        let big = module(&[(5, vec![1, 0, 0x81, 0x80, 0x04])]);
        assert!(precheck(&big, &b).unwrap_err().contains("memory at start"));
        // Five funcref tables of 0 elements.
        let tables = module(&[(
            4,
            vec![
                5, 0x70, 0, 0, 0x70, 0, 0, 0x70, 0, 0, 0x70, 0, 0, 0x70, 0, 0,
            ],
        )]);
        assert!(precheck(&tables, &b)
            .unwrap_err()
            .contains("more than 4 tables"));
        // One table of 2^20 + 1 elements.
        let wide = module(&[(4, vec![1, 0x70, 0, 0x81, 0x80, 0x40])]);
        assert!(precheck(&wide, &b)
            .unwrap_err()
            .contains("table of 1048577"));
        // A memory import.
        let import = module(&[(2, vec![1, 1, b'm', 1, b'x', 2, 0, 1])]);
        assert!(precheck(&import, &b).unwrap_err().contains("imports `m.x`"));
        // Garbage.
        assert!(precheck(b"\0asm\x01\0\0\0\x05\x09", &b)
            .unwrap_err()
            .contains("not a valid"));
        // What a slot holds passes: one memory of one page, four tables.
        let fine = module(&[
            (4, vec![4, 0x70, 0, 1, 0x70, 0, 1, 0x70, 0, 1, 0x70, 0, 1]),
            (5, vec![1, 0, 1]),
        ]);
        assert_eq!(precheck(&fine, &b), Ok(()));
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(100), "100 B");
        assert_eq!(human(128 << 20), "128 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
