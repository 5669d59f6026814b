//! The one shared wasmtime [`Engine`]: pooling allocator, fuel, epoch interruption, bounded stacks,
//! and the thread that advances the epoch.

use bulkhead_core::contract::MAX_MEMORY;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the resolution of wall-clock timeouts, and how often a
/// long-running plugin yields its thread to other attempts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Deepest wasm stack an attempt may use; deeper recursion is a stack-overflow trap.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Tables a module may define (a component's core modules often need more than one).
pub const MAX_TABLES: u32 = 4;

/// Core instances each pool slot can hold (one for a module, a few for a component).
pub const CORE_INSTANCES_PER_SLOT: u32 = 4;

/// Elements of any one table (what `table.grow` can reach).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Freed pool slots are decommitted (and become free again) this many at a time.
pub const DECOMMIT_BATCH: u32 = 16;

/// Pool slots for `attempts` attempts alive at once: up to [`DECOMMIT_BATCH`] - 1 freed slots may
/// wait for their batch, and wasmtime's flush-and-retry can find a batch another thread is
/// flushing, so a pool of exactly `attempts` slots would now and then refuse an attempt that the
/// host let start ("maximum concurrent limit reached", found by the tests at 2 slots).
pub fn pool_slots(attempts: u32) -> u32 {
    attempts.saturating_add(DECOMMIT_BATCH)
}

/// Builds the engine. `slots` bounds how many instances can be alive at once.
pub fn build(slots: u32) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    // A component (ABI v2) is several core instances (its module and the shims that link it)
    // sharing one memory: the pool holds more core instances than memories.
    pool.total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
        .total_memories(slots)
        // Every slot can hold a module with all the tables it may have: one plugin with four
        // tables never starves other tasks of theirs.
        .total_tables(slots.saturating_mul(MAX_TABLES))
        .total_stacks(slots)
        .total_component_instances(slots)
        .max_memory_size(MAX_MEMORY as usize)
        .max_memories_per_module(1)
        .max_tables_per_module(MAX_TABLES)
        .table_elements(MAX_TABLE_ELEMENTS)
        // Keep the first pages of each slot mapped between attempts: the kernel then resets
        // them instead of faulting fresh ones in. Bounded: slots x these sizes.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .decommit_batch_size(DECOMMIT_BATCH as usize)
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + (1 << 20))
        .parallel_compilation(true);
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on one thread, until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("bulkhead-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
