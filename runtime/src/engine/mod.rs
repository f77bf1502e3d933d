//! The shared Wasmtime engine and how components get into it.
//!
//! One [`wasmtime::Engine`] serves the whole app. Components are compiled once
//! (or loaded from the on-disk cache in [`compile_cache`]); core modules are
//! turned into components first ([`componentize`]), components with
//! dependencies are composed with them ([`compose`]), and each request then
//! only pays for a new `Store` and an instantiation from a pre-linked
//! `InstancePre`.

pub(crate) mod cache_file;
pub mod compile_cache;
pub mod componentize;
pub mod compose;
pub mod epoch;
pub mod imports;
pub mod loader;
pub mod wasi_2023_10_18;
pub mod wasi_rc;

use anyhow::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Bytes of each linear memory kept resident between requests (a hello-world
/// guest dirties well under this; a Rust guest's shadow stack alone is 1 MiB).
const KEEP_RESIDENT_MEMORY: usize = 2 << 20;
/// Bytes of each table kept resident between requests.
const KEEP_RESIDENT_TABLE: usize = 256 << 10;
/// Bytes of each async (fiber) stack kept resident between requests.
const KEEP_RESIDENT_STACK: usize = 128 << 10;

/// Engine settings that are worth a flag.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Use the pooling allocator (copy-on-write memory images, slots reused
    /// between requests). Falls back to on-demand allocation when the
    /// machine cannot reserve the pool's address space.
    pub pooling: bool,
    /// Requests (and so instances) in flight at once; the pool gets a little
    /// headroom above this.
    pub max_instances: u32,
    /// Upper bound for one linear memory, in bytes.
    pub max_instance_memory: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            pooling: true,
            max_instances: 1000,
            max_instance_memory: 256 << 20,
        }
    }
}

/// Builds the engine. Pooling reserves virtual address space up front; if
/// that fails (small `ulimit -v`, 32-bit address space) we log it and use
/// on-demand allocation instead of refusing to start.
pub fn build_engine(settings: &EngineSettings) -> anyhow::Result<Engine> {
    let mut config = base_config();
    if settings.pooling {
        // Slots are released when a store drops, a moment after the request
        // that held it finished; headroom keeps that moment from turning
        // into an instantiation failure (admission enforces the real cap).
        let slots = settings
            .max_instances
            .saturating_add(pool_headroom(settings.max_instances));
        let mut pooling = PoolingAllocationConfig::default();
        // A Spin component instance holds a handful of core instances (the
        // program, the WASI adapter, shims), each with a memory or tables.
        pooling
            .total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(8))
            .total_stacks(slots)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_core_instances_per_component(32)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .table_elements(100_000)
            .max_memory_size(settings.max_instance_memory)
            // Reset a slot for reuse by zeroing (or re-copying from the
            // image) only the pages the last request dirtied, found with the
            // PAGEMAP_SCAN ioctl (Linux 6.7+), instead of `madvise`: the
            // pages stay resident, so the next request takes no page faults
            // and the process no TLB-shootdown IPIs. Beyond these sizes, and
            // on kernels without the ioctl, `madvise` is used as before.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE)
            .async_stack_keep_resident(KEEP_RESIDENT_STACK);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        match Engine::new(&config) {
            Ok(engine) => return Ok(engine),
            Err(e) => tracing::warn!(
                error = %e,
                "pooling allocator unavailable; using on-demand instance allocation"
            ),
        }
        config = base_config();
    }
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the Wasmtime engine")
}

/// Pool slots beyond `max_instances`: room for slots still being released
/// and for spare instances made ahead of demand.
pub fn pool_headroom(max_instances: u32) -> u32 {
    (max_instances / 8).max(16)
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true)
        .memory_init_cow(true);
    // `TRIB_PROFILE=perfmap` writes /tmp/perf-PID.map so `perf` names the
    // guests' compiled functions (wasmtime's profiling hook; off otherwise).
    if std::env::var("TRIB_PROFILE").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}
