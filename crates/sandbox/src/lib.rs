//! The sandbox: runs one attempt of one plugin in a fresh wasmtime instance, with limits and
//! explicit grants, and says what came of it.
//!
//! It knows nothing about workflows: it takes (plugin, stdin bytes, limits, grants) and returns an
//! [`AttemptOutcome`]. It owns the one [`wasmtime::Engine`] (pooling allocator, fuel, epochs), the
//! WASI linker, the compiled-module cache, and the mapping of every wasmtime error to one
//! [`FailureKind`] (`classify`).

mod attempt;
mod cache;
mod classify;
pub mod compile;
mod component;
mod engine;
mod http;
mod mounts;
mod pipes;

pub use engine::{EPOCH_TICK, MAX_WASM_STACK};
/// Deletes the oldest entries (compiled plugins, validated workflows) of the cache in `dir`
/// until it holds at most `max_bytes`, and leftover temporary files; returns the bytes freed.
pub fn prune_cache(dir: &std::path::Path, max_bytes: u64) -> u64 {
    cache::prune(dir, max_bytes)
}

pub use bulkhead_core::contract::{
    AttemptOutcome, Failure, FailureKind, Grants, Limits, Mount, MAX_FUEL, MAX_MEMORY,
};
pub use classify::parse_output;
pub use pipes::LogTap;

/// What a capped log pipe of `limit` bytes keeps of `bytes` written `split` bytes at a time,
/// and whether it dropped any (the pipe a plugin's stderr goes to; for fuzzing).
pub fn capture(limit: u64, bytes: &[u8], split: usize) -> (Vec<u8>, bool) {
    let pipe = pipes::CappedPipe::new(limit, pipes::Overflow::Truncate);
    for chunk in bytes.chunks(split.max(1)) {
        pipe.append(chunk);
    }
    pipe.take()
}

use attempt::AttemptState;
use cache::ModuleCache;
use compile::{CompileBounds, CompileError, Compiler};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module};

/// Builds a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    slots: u32,
    cache_dir: Option<PathBuf>,
    bounds: CompileBounds,
    compiler: Compiler,
}

impl SandboxBuilder {
    /// How many attempts may be alive at once (the size of the instance pool). Default 256.
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// Keep compiled plugins in this folder (default: no disk cache).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Bounds on compiling a plugin (default: [`CompileBounds::default`]).
    pub fn compile_bounds(mut self, bounds: CompileBounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// Where plugins are compiled (default: in this process, bounded only by size and
    /// declarations; the `bulkhead` binary compiles in a child process of itself).
    pub fn compiler(mut self, compiler: Compiler) -> Self {
        self.compiler = compiler;
        self
    }

    /// Creates the engine, the WASI linker and the epoch thread.
    pub fn build(self) -> Result<Sandbox, SandboxError> {
        let engine = engine::build(engine::pool_slots(self.slots))
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let mut linker: Linker<AttemptState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut AttemptState| &mut s.wasi)
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let component_linker =
            component::linker(&engine).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let ticker = engine::EpochTicker::start(engine.clone())
            .map_err(|e| SandboxError::Engine(format!("cannot start the epoch thread: {e}")))?;
        let cache = self.cache_dir.map(|d| ModuleCache::new(d, &engine));
        Ok(Sandbox {
            engine,
            linker,
            component_linker,
            cache,
            slots: self.slots,
            bounds: self.bounds,
            compiler: self.compiler,
            stopping: AtomicBool::new(false),
            _ticker: ticker,
        })
    }
}

/// Errors setting up the sandbox itself (not a plugin's fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// wasmtime refused the configuration (e.g. not enough address space for the pool).
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
}

/// Why a plugin cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}`: {message}")]
pub struct LoadError {
    /// The plugin's name.
    pub plugin: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The shared engine and everything built once per host.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<AttemptState>,
    component_linker: wasmtime::component::Linker<component::ComponentState>,
    cache: Option<ModuleCache>,
    slots: u32,
    bounds: CompileBounds,
    compiler: Compiler,
    stopping: AtomicBool,
    _ticker: engine::EpochTicker,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// A plugin ready to run: compiled, linked against WASI, checked for `_start`.
pub struct Plugin {
    /// Its name (file stem).
    pub name: String,
    /// SHA-256 of the `.wasm` bytes, hex.
    pub hash: String,
    /// Size of the `.wasm` file in bytes.
    pub size: u64,
    /// Whether the compiled code came from the disk cache.
    pub from_cache: bool,
    /// Time spent compiling or loading it.
    pub load_time: Duration,
    /// What it imports, as `module::name` (ABI v1) or interface names (ABI v2), in order.
    pub imports: Vec<String>,
    code: Code,
}

/// A plugin's compiled code, linked.
enum Code {
    /// ABI v1: a WASI preview 1 command module.
    Module(InstancePre<AttemptState>),
    /// ABI v2: a component of the `bulkhead:plugin` world.
    Component(component::Pre),
}

/// The plugin ABI a plugin was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// A WASI preview 1 command: input on stdin, output on stdout, exit codes.
    V1,
    /// A WebAssembly component exporting `run` of `wit/plugin.wit`.
    V2,
}

impl Abi {
    /// `1` or `2`.
    pub fn number(self) -> u32 {
        match self {
            Abi::V1 => 1,
            Abi::V2 => 2,
        }
    }
}

impl Plugin {
    /// The linked module of an ABI v1 plugin.
    fn module_pre(&self) -> Option<&InstancePre<AttemptState>> {
        match &self.code {
            Code::Module(pre) => Some(pre),
            Code::Component(_) => None,
        }
    }

    /// The ABI it was built for.
    pub fn abi(&self) -> Abi {
        match self.code {
            Code::Module(_) => Abi::V1,
            Code::Component(_) => Abi::V2,
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A builder with the defaults: 256 slots, no disk cache.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            slots: 256,
            cache_dir: None,
            bounds: CompileBounds::default(),
            compiler: Compiler::InProcess,
        }
    }

    /// How many attempts may be alive at once.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The bounds on compiling a plugin.
    pub fn compile_bounds(&self) -> &CompileBounds {
        &self.bounds
    }

    /// The host is stopping: compiles under way are abandoned (their child process killed) and
    /// later ones refused, each as a load failure.
    pub fn stop_compiling(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Compiles (or loads from the cache) and links a plugin.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        let err = |message: String| LoadError {
            plugin: name.to_string(),
            message,
        };
        if is_component(bytes) {
            return self.load_component(name, bytes, started);
        }
        compile::precheck(bytes, &self.bounds).map_err(err)?;
        let hash = hex::encode(Sha256::digest(bytes));
        let (module, from_cache) = self
            .cached(
                |c| c.get(&self.engine, &hash),
                || {
                    self.compile(bytes).map_err(|e| match e {
                        CompileError::Invalid(m) => format!("does not compile: {m}"),
                        CompileError::Bound(m) | CompileError::Host(m) => m,
                        CompileError::Interrupted => {
                            "was not compiled: the host is stopping".to_string()
                        }
                    })
                },
                |c, m| c.put(&hash, m),
            )
            .map_err(err)?;
        match module.get_export("_start") {
            Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
            Some(_) => {
                return Err(err(
                    "exports `_start`, but not as a function of no arguments".into(),
                ))
            }
            None => return Err(err(
                "has no `_start` export: it is not a WASI command (build a binary, not a library, \
                     for `wasm32-wasip1`)"
                    .into(),
            )),
        }
        let pre = self.linker.instantiate_pre(&module).map_err(|e| {
            err(format!(
                "cannot be linked: {} (plugins may import only `wasi_snapshot_preview1`)",
                classify::root_message(&e)
            ))
        })?;
        let imports = module
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect();
        Ok(Plugin {
            name: name.to_string(),
            hash,
            size: bytes.len() as u64,
            from_cache,
            load_time: started.elapsed(),
            imports,
            code: Code::Module(pre),
        })
    }

    /// A component (ABI v2): compiled in this process (not in the bounded child compiler yet), kept in the disk cache, linked against
    /// the `plugin` world and WASI 0.2, refused naming any other import.
    fn load_component(
        &self,
        name: &str,
        bytes: &[u8],
        started: Instant,
    ) -> Result<Plugin, LoadError> {
        let err = |message: String| LoadError {
            plugin: name.to_string(),
            message,
        };
        if bytes.len() as u64 > self.bounds.max_module_size {
            return Err(err(format!(
                "is {} bytes, more than the {} bytes a plugin may have",
                bytes.len(),
                self.bounds.max_module_size
            )));
        }
        let hash = hex::encode(Sha256::digest(bytes));
        let (compiled, from_cache) = self
            .cached(
                |c| c.get_component(&self.engine, &hash),
                || {
                    if self.stopping.load(Ordering::SeqCst) {
                        return Err("was not compiled: the host is stopping".into());
                    }
                    wasmtime::component::Component::new(&self.engine, bytes)
                        .map_err(|e| format!("does not compile: {}", classify::root_message(&e)))
                },
                |c, compiled| c.put_component(&hash, compiled),
            )
            .map_err(err)?;
        let imports = component::imports(&self.engine, &compiled);
        let pre = component::prepare(&self.component_linker, &compiled).map_err(err)?;
        Ok(Plugin {
            name: name.to_string(),
            hash,
            size: bytes.len() as u64,
            from_cache,
            load_time: started.elapsed(),
            imports,
            code: Code::Component(pre),
        })
    }

    /// The bytes kept by [`Sandbox::cache_workflow`] under `key`, if the cache holds them with a
    /// right tag (`None` without a cache).
    pub fn cached_workflow(&self, key: &str) -> Option<Vec<u8>> {
        self.cache.as_ref()?.get_workflow(key)
    }

    /// Keeps a validated workflow's stored form under `key` in the disk cache, tagged like
    /// compiled code (nothing happens without a cache; a cache that cannot be written only
    /// costs time).
    pub fn cache_workflow(&self, key: &str, spec: &[u8]) {
        if let Some(cache) = &self.cache {
            cache.put_workflow(key, spec);
        }
    }

    /// Compiled code from the cache when it holds it (`true`), else from `compile`, then kept
    /// in the cache: the same for modules and components.
    fn cached<C>(
        &self,
        get: impl FnOnce(&ModuleCache) -> Option<C>,
        compile: impl FnOnce() -> Result<C, String>,
        put: impl FnOnce(&ModuleCache, &C),
    ) -> Result<(C, bool), String> {
        if let Some(c) = self.cache.as_ref().and_then(get) {
            return Ok((c, true));
        }
        let compiled = compile()?;
        if let Some(cache) = &self.cache {
            put(cache, &compiled);
        }
        Ok((compiled, false))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Module, CompileError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(CompileError::Interrupted);
        }
        match &self.compiler {
            Compiler::InProcess => Module::new(&self.engine, bytes)
                .map_err(|e| CompileError::Invalid(classify::root_message(&e))),
            Compiler::Child(exe) => {
                let artifact = compile::in_child(exe, bytes, &self.bounds, &self.stopping)?;
                compile::deserialize(&self.engine, &artifact).map_err(|e| {
                    CompileError::Host(format!(
                        "the compiler process wrote code this host cannot load: {}",
                        classify::root_message(&e)
                    ))
                })
            }
        }
    }

    /// Runs one attempt: a fresh instance, `input` on stdin (its parts read one after the other),
    /// nothing granted beyond `grants`.
    pub async fn run(
        &self,
        plugin: &Plugin,
        input: Vec<bytes::Bytes>,
        limits: &Limits,
        grants: &Grants,
    ) -> AttemptOutcome {
        self.run_tapped(plugin, input, limits, grants, None).await
    }

    /// [`Sandbox::run`], with the attempt's log readable through `tap` while it runs.
    pub async fn run_tapped(
        &self,
        plugin: &Plugin,
        input: Vec<bytes::Bytes>,
        limits: &Limits,
        grants: &Grants,
        tap: Option<&LogTap>,
    ) -> AttemptOutcome {
        match &plugin.code {
            Code::Module(_) => attempt::run(&self.engine, plugin, input, limits, grants, tap).await,
            Code::Component(pre) => {
                component::run(&self.engine, pre, input, limits, grants, tap).await
            }
        }
    }

    /// `n` bare instantiations of `plugin` (pooling allocator, `InstancePre`, no WASI pipes, no
    /// `_start`): the floor under every attempt, timed one by one, for `bulkhead bench`.
    pub async fn instantiate_only(
        &self,
        plugin: &Plugin,
        n: usize,
    ) -> Result<Vec<Duration>, String> {
        attempt::instantiate_only(&self.engine, plugin, n).await
    }
}

/// A component starts with the wasm magic and layer 1 (`0d 00 01 00`), a core module with version 1.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [0x0d, 0x00, 0x01, 0x00]
}
