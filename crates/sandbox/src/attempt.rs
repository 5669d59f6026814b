//! One attempt: a fresh store and WASI context, the limits applied, `_start` called, the outcome
//! collected. Everything allocated here is dropped when the attempt ends, whatever the plugin did.

use crate::classify;
use crate::pipes::{CappedPipe, ChunkedInput, Overflow};
use crate::Plugin;
use bulkhead_core::contract::FailureKind;
use bulkhead_core::contract::{AttemptOutcome, Failure};
use bulkhead_core::contract::{Grants, Limits};
use bytes::Bytes;
use std::time::Instant;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The data of one attempt's store.
pub struct AttemptState {
    pub(super) wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
}

/// Applies the memory limit and remembers the peak and any refusal.
pub(super) struct MemoryLimiter {
    max: usize,
    pub(super) peak: usize,
    pub(super) refused: Option<usize>,
    instances: usize,
}

impl MemoryLimiter {
    /// At most `memory` bytes of linear memory, `instances` core instances.
    pub(super) fn new(memory: u64, instances: usize) -> Self {
        MemoryLimiter {
            max: usize::try_from(memory).unwrap_or(usize::MAX),
            peak: 0,
            refused: None,
            instances,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.refused = Some(desired);
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// A store's data that carries the attempt's memory limiter.
pub(super) trait Limited: Send + 'static {
    fn limiter(&mut self) -> &mut MemoryLimiter;
    fn limiter_ref(&self) -> &MemoryLimiter;
}

impl Limited for AttemptState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
    fn limiter_ref(&self) -> &MemoryLimiter {
        &self.limiter
    }
}

/// When an attempt started, when it must end, and the fuel it was given.
pub(super) struct Budget {
    started: Instant,
    deadline: Instant,
    fuel: u64,
}

/// Puts an attempt's limits on its store, whatever its ABI: the memory limiter, the epoch
/// deadline (every tick a running plugin yields its thread; past the deadline it is
/// interrupted, even with unlimited fuel and no host calls) and the fuel budget.
pub(super) fn limit<T: Limited>(store: &mut Store<T>, limits: &Limits) -> Result<Budget, Failure> {
    store.limiter(|s| s.limiter() as &mut dyn ResourceLimiter);
    let started = Instant::now();
    let deadline = started + limits.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(Trap::Interrupt.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let fuel = limits.fuel.min(super::MAX_FUEL);
    store
        .set_fuel(fuel)
        .map_err(|e| Failure::new(FailureKind::Load, format!("cannot set fuel: {e}")))?;
    Ok(Budget {
        started,
        deadline,
        fuel,
    })
}

/// Runs `call` (instantiation and the plugin's entry point) to its end or the deadline. The
/// outer timer catches a plugin blocked in a host call (e.g. a long sleep), where epochs are
/// not checked; it fires a few ticks after the deadline so that running wasm is stopped by the
/// epoch trap. Dropping the call future drops the fiber and its stack.
pub(super) async fn within<R>(
    budget: &Budget,
    call: impl std::future::Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    let outer = budget.deadline + 3 * super::engine::EPOCH_TICK;
    match tokio::time::timeout_at(outer.into(), call).await {
        Ok(r) => r,
        Err(_) => Err(Trap::Interrupt.into()),
    }
}

/// What an attempt used.
pub(super) struct Spent {
    pub(super) duration: std::time::Duration,
    pub(super) fuel_used: u64,
    pub(super) peak_memory: u64,
    /// The memory size the limiter refused, if it refused one.
    pub(super) refused: Option<u64>,
}

/// Reads back what the attempt used. Fuel is exact, except after a timeout: compiled code keeps
/// its running count in a register and writes it back at calls and returns, so a loop stopped
/// by the epoch trap is counted only up to its last call (docs/limits.md).
pub(super) fn spent<T: Limited>(store: &Store<T>, budget: &Budget) -> Spent {
    let limiter = store.data().limiter_ref();
    Spent {
        duration: budget.started.elapsed(),
        fuel_used: budget.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
        peak_memory: limiter.peak as u64,
        refused: limiter.refused.map(|r| r as u64),
    }
}

/// The attempt's log, with a marker line where `max_logs` cut it.
pub(super) fn finish_log(pipe: &CappedPipe, max_logs: u64) -> Vec<u8> {
    let (mut log, cut) = pipe.take();
    if cut {
        log.extend_from_slice(
            format!("\n[bulkhead: log cut at max_logs = {max_logs} bytes]\n").as_bytes(),
        );
    }
    log
}

pub(super) async fn run(
    engine: &Engine,
    plugin: &Plugin,
    input: Vec<Bytes>,
    limits: &Limits,
    grants: &Grants,
    tap: Option<&crate::pipes::LogTap>,
) -> AttemptOutcome {
    let stdout = CappedPipe::new(limits.max_output, Overflow::Trap);
    let stderr = CappedPipe::new(limits.max_logs, Overflow::Truncate);
    if let Some(tap) = tap {
        tap.attach(&stderr);
    }
    let wasi = match wasi_context(plugin, input, grants, &stdout, &stderr) {
        Ok(w) => w,
        Err(f) => return AttemptOutcome::failed(f),
    };
    let mut store = Store::new(
        engine,
        AttemptState {
            wasi,
            limiter: MemoryLimiter::new(limits.memory, 1),
        },
    );
    let budget = match limit(&mut store, limits) {
        Ok(b) => b,
        Err(f) => return AttemptOutcome::failed(f),
    };
    let call = async {
        let pre = plugin
            .module_pre()
            .ok_or_else(|| wasmtime::format_err!("not a module"))?;
        let instance = pre.instantiate_async(&mut store).await?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    };
    let result = within(&budget, call).await;
    let spent = spent(&store, &budget);
    drop(store);

    let (out, out_overflow) = stdout.take();
    let log = finish_log(&stderr, limits.max_logs);
    let ended = classify::Ended {
        result,
        stdout_overflow: out_overflow,
        memory_refused: spent.refused,
        limits,
        log: &log,
    };
    let result = classify::classify(ended).and_then(|()| classify::parse_output(out));
    AttemptOutcome {
        result,
        duration: spent.duration,
        fuel_used: spent.fuel_used,
        peak_memory: spent.peak_memory,
        log,
    }
}

/// The WASI context: stdin holds the input, stdout/stderr are capped pipes, and nothing else
/// is granted unless `grants` says so. The host's environment, args and files never leak.
fn wasi_context(
    plugin: &Plugin,
    input: Vec<Bytes>,
    grants: &Grants,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
) -> Result<WasiP1Ctx, Failure> {
    let mut b = wasi_builder(grants, stdout, stderr)?;
    b.stdin(ChunkedInput::new(input)).arg(&plugin.name);
    Ok(b.build_p1())
}

/// What both ABIs grant: stdout and stderr to the capped pipes, no sockets, no name lookup,
/// the environment and folders of `grants` only.
pub(super) fn wasi_builder(
    grants: &Grants,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
) -> Result<WasiCtxBuilder, Failure> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (k, v) in &grants.env {
        b.env(k, v);
    }
    // Held open until the context has its own handles: each names the inode checked here.
    let mut opened = Vec::with_capacity(grants.mounts.len());
    for m in &grants.mounts {
        let perms = if m.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        // The folder is the host's business, not the plugin's: a mount that is gone or was
        // tampered with fails the attempt as `host`.
        let fail = |e: String| {
            Failure::new(
                FailureKind::Host,
                format!(
                    "cannot open mount {} (guest {}): {e}",
                    m.host.display(),
                    m.guest
                ),
            )
        };
        let dir = super::mounts::open(m).map_err(fail)?;
        b.preopened_dir(dir.path(), &m.guest, perms)
            .map_err(|e| fail(e.to_string()))?;
        opened.push(dir);
    }
    drop(opened);
    Ok(b)
}

/// The floor under an attempt, for `bulkhead bench`: `n` bare instantiations of `plugin` with
/// the pooling allocator and its `InstancePre` (a store with an empty WASI context and the
/// memory limiter, no pipes, no fuel, no `_start`). Returns the time of each, in order.
pub(super) async fn instantiate_only(
    engine: &Engine,
    plugin: &Plugin,
    n: usize,
) -> Result<Vec<std::time::Duration>, String> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let mut store = Store::new(
            engine,
            AttemptState {
                wasi: WasiCtxBuilder::new().build_p1(),
                limiter: MemoryLimiter::new(u64::MAX, 1),
            },
        );
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(u64::MAX / 2);
        store.set_fuel(u64::MAX / 2).map_err(|e| e.to_string())?;
        plugin
            .module_pre()
            .ok_or_else(|| {
                format!(
                    "{} is a component: bare instantiation is measured for modules",
                    plugin.name
                )
            })?
            .instantiate_async(&mut store)
            .await
            .map_err(|e| format!("cannot instantiate {}: {e}", plugin.name))?;
        drop(store);
        times.push(started.elapsed());
    }
    Ok(times)
}
