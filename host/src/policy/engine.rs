//! The wasmtime engine every policy component runs in, set up once.
//!
//! Why it looks like this (after wasmtime's `fast_instantiation` example):
//! - A **pooling allocator** keeps pre-reserved memory slots, so a fresh
//!   instance per evaluation costs microseconds, and a slot is reset (by
//!   copy-on-write remapping) before it is reused: no state leaks between
//!   calls.
//! - **Epoch interruption** bounds every call: a ticker thread advances the
//!   engine's epoch every millisecond and each store gets a deadline in ticks,
//!   so a looping guest traps instead of hanging a thread. It costs a counter
//!   check per loop back-edge, far cheaper than fuel. Past the deadline a
//!   grace period tells a stuck guest from a preempted one (`deadline.rs`).
//! - **Store limits** cap each instance's memory; a guest that grows past the
//!   cap traps (rather than seeing `memory.grow` fail and aborting in some
//!   guest-specific way), so the host can report exactly what happened.
//! - One **linker** serves all three worlds, since they import the same
//!   things: the `log` interface, and WASI for guests built against it. WASI is
//!   present only so that ordinary `wasm32-wasip2` builds link; it is denied
//!   everything: no preopened directories, no environment, no sockets, a
//!   frozen clock and a fixed random stream. Guests that import no WASI (what
//!   `scalewise policy build` produces) never get a WASI context at all, which
//!   is also what makes their instantiation cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings;
use super::cache::ArtifactCache;
use super::deadline::Overrun;
use super::guard::OutputLimits;

/// How often the epoch advances: the resolution of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How instances are used across evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceMode {
    /// A new instance for every evaluation: nothing carries over, ever.
    Fresh,
    /// Keep instances alive and reuse them, retiring one after any trap or
    /// timeout and after `max_calls` calls. For hot paths; policies are pure,
    /// so reuse is safe for well-behaved guests.
    Warm { max_calls: u64 },
    /// Decide per policy by what a fresh instance costs, measured when the
    /// policy loads: fresh below [`WARM_ABOVE`], warm from there. A Rust
    /// policy built by `scalewise policy build` instantiates in tens of
    /// microseconds and stays fresh; a Python or JavaScript component
    /// carries its interpreter's heap (megabytes to copy in, milliseconds
    /// per instance) and runs warm. Its state still travels through the
    /// input and output on every call, so it stays as pure as its code.
    Auto { max_calls: u64 },
}

/// In [`InstanceMode::Auto`], a policy whose fresh instance and first call
/// (`validate-config`) cost this much or more runs warm. Measured on a
/// 2-core machine: a Rust component built by `scalewise policy build` takes
/// about 10-40 µs, a JavaScript one about 0.5 ms, a Python one 1.5-4 ms.
pub const WARM_ABOVE: Duration = Duration::from_micros(150);

/// Making an instance may take this long (or the call deadline, if longer):
/// the deadline of a call starts when its instance is ready, so a warm
/// instance's first call is not charged for copying an interpreter's heap.
/// A start function that never ends is still stopped.
pub const INSTANTIATION_DEADLINE: Duration = Duration::from_secs(1);

/// One policy's own limits, over the engine's defaults
/// (`[policies.limits.ID]` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyLimits {
    pub deadline: Option<Duration>,
    pub instance_mode: Option<InstanceMode>,
}

/// Which compiler turns a component into machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compiler {
    /// Cranelift: optimised code, ~100 ms for a typical policy.
    #[default]
    Cranelift,
    /// Winch, wasmtime's baseline compiler: ~5x faster to compile, slower
    /// code. Used to put a new version into service at once while Cranelift
    /// compiles it in the background (see `registry.rs`).
    Winch,
}

impl Compiler {
    pub fn as_str(self) -> &'static str {
        match self {
            Compiler::Cranelift => "cranelift",
            Compiler::Winch => "winch",
        }
    }
}

/// The sandbox's limits, per call and per instance.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub deadline: Duration,
    pub memory_limit: usize,
    pub instance_mode: InstanceMode,
    pub output: OutputLimits,
    /// Instances that may be alive at once across all policies (pool size).
    pub max_instances: u32,
    pub compiler: Compiler,
    /// Limits of single policies, by id.
    pub per_policy: std::collections::HashMap<String, PolicyLimits>,
}

impl SandboxOptions {
    /// The call deadline of policy `id`: its own (`[policies.limits.ID]`),
    /// else the engine's. Components and rhai scripts alike.
    pub fn deadline_for(&self, id: &str) -> Duration {
        self.per_policy.get(id).and_then(|l| l.deadline).unwrap_or(self.deadline)
    }
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(10),
            memory_limit: 64 * 1024 * 1024,
            // The library's default is the plainest; the config's is `Auto`.
            instance_mode: InstanceMode::Fresh,
            output: OutputLimits::default(),
            max_instances: 256,
            compiler: Compiler::Cranelift,
            per_policy: Default::default(),
        }
    }
}

/// Per-store data: limits, the optional WASI context, and who is logging.
pub struct HostState {
    pub(crate) limits: StoreLimits,
    pub(crate) overrun: Overrun,
    pub(crate) wasi: Option<WasiState>,
    pub(crate) log: LogContext,
}

/// A denied-everything WASI context whose stdout and stderr are captured.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of each pipe already logged (warm instances keep their pipes).
    seen: [usize; 2],
}

/// Who the messages of the `log` import belong to.
#[derive(Clone)]
pub(crate) struct LogContext {
    pub(crate) policy: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) messages: u32,
}

/// At most this many log messages per call; the rest are dropped.
const MAX_LOG_MESSAGES: u32 = 64;
/// Longer log messages are cut to this many bytes.
const MAX_LOG_BYTES: usize = 1024;
/// Guest stdout/stderr kept per call.
const MAX_PIPE_BYTES: usize = 16 * 1024;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.as_mut().expect("a WASI context exists for every guest that imports WASI");
        WasiCtxView { ctx: &mut wasi.ctx, table: &mut wasi.table }
    }
}

struct FrozenClock;
impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}
impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl WasiState {
    fn denied() -> Self {
        let stdout = MemoryOutputPipe::new(MAX_PIPE_BYTES);
        let stderr = MemoryOutputPipe::new(MAX_PIPE_BYTES);
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(wasmtime_wasi::Deterministic::new(vec![4]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![4]))
            .insecure_random_seed(0)
            .build();
        Self { ctx, table: ResourceTable::new(), stdout, stderr, seen: [0, 0] }
    }
}

impl bindings::log::Host for HostState {
    fn log(&mut self, level: bindings::log::Level, message: String) {
        self.log.messages += 1;
        if self.log.messages > MAX_LOG_MESSAGES {
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (policy, version) = (&*self.log.policy, self.log.generation);
        use bindings::log::Level::*;
        match level {
            Trace => tracing::trace!(policy, version, "{message}"),
            Debug => tracing::debug!(policy, version, "{message}"),
            Info => tracing::info!(policy, version, "{message}"),
            Warn => tracing::warn!(policy, version, "{message}"),
            Error => tracing::error!(policy, version, "{message}"),
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("scalewise-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The engine, its linker, its limits and its compile cache.
pub struct PolicyEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) options: SandboxOptions,
    pub(crate) cache: Option<ArtifactCache>,
    _ticker: EpochTicker,
}

impl PolicyEngine {
    pub fn new(options: SandboxOptions, cache: Option<ArtifactCache>) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        let n = options.max_instances;
        pool.total_component_instances(n)
            .total_core_instances(n * 4)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instances_per_component(16)
            .max_memory_size(options.memory_limit)
            // Reset a slot by finding its dirty pages (PAGEMAP_SCAN, Linux
            // 6.7+) and copying them back from the image, instead of
            // decommitting them: the next instance in the slot then takes no
            // page faults. Up to 1 MiB of dirty memory per slot stays resident.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(1 << 20)
            // Likewise for funcref tables: resetting them by decommit made
            // every fresh instance fault its table back in.
            .table_keep_resident(64 << 10);
        let mut config = Config::new();
        match options.compiler {
            Compiler::Cranelift => config.strategy(wasmtime::Strategy::Cranelift),
            // Compile on the calling thread: a Winch build must never queue
            // behind a Cranelift build's tasks on the shared compile pool.
            Compiler::Winch => config.strategy(wasmtime::Strategy::Winch).parallel_compilation(false),
        };
        // `SCALEWISE_PERFMAP=1` writes /tmp/perf-PID.map, so `perf report`
        // names the guests' functions (build them with
        // `profile.policy.strip=false` to get their own names, not indices).
        if std::env::var_os("SCALEWISE_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        bindings::log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self { engine, linker, options, cache, _ticker: ticker })
    }

    pub fn options(&self) -> &SandboxOptions {
        &self.options
    }

    /// A store for one instance: limits on, the instantiation deadline
    /// armed (see [`INSTANTIATION_DEADLINE`]), WASI only if asked.
    pub(crate) fn new_store(&self, log: LogContext, with_wasi: bool) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.options.memory_limit)
            .trap_on_grow_failure(true)
            .build();
        let wasi = with_wasi.then(WasiState::denied);
        let instantiation = INSTANTIATION_DEADLINE.max(self.options.deadline);
        let overrun = Overrun::new(instantiation);
        let mut store = Store::new(&self.engine, HostState { limits, overrun, wasi, log });
        store.limiter(|s| &mut s.limits);
        // Past the wall-clock deadline, check every tick whether the call has
        // also used a deadline's worth of CPU (see `deadline.rs`).
        store.epoch_deadline_callback(|mut ctx| {
            if ctx.data_mut().overrun.should_stop() {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        arm_deadline(&mut store, instantiation);
        store
    }
}

/// Arm a call's deadline: `deadline` from now, rounded up to whole ticks.
pub(crate) fn arm_deadline(store: &mut Store<HostState>, deadline: Duration) {
    store.data_mut().overrun.arm(deadline);
    let ticks = deadline.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64;
    store.set_epoch_deadline(ticks + 1);
}

/// What a policy kit prints before it lets an error end the call in a trap
/// (the Python and JavaScript kits do): the line a trap reports, rather than
/// the interpreter's own last words ("Python function threw an unexpected
/// exception").
pub const KIT_ERROR_PREFIX: &str = "policy error: ";

/// Emit what a WASI guest printed into the log, and clear per-call counters.
/// Returns what the guest said on stderr in this call, so a trap can say it:
/// the last line a kit marked with [`KIT_ERROR_PREFIX`], or else the last
/// two lines (a panic message, typically, without std's `note:` hints).
pub(crate) fn flush_guest_output(state: &mut HostState) -> Option<String> {
    state.log.messages = 0;
    let wasi = state.wasi.as_mut()?;
    let mut stderr_lines: Vec<String> = Vec::new();
    for (i, (stream, pipe)) in [("stdout", &wasi.stdout), ("stderr", &wasi.stderr)].into_iter().enumerate() {
        let bytes = pipe.contents();
        let new = &bytes[wasi.seen[i].min(bytes.len())..];
        wasi.seen[i] = bytes.len();
        let text = String::from_utf8_lossy(new);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(policy = &*state.log.policy, version = state.log.generation, stream, "{line}");
            if stream == "stderr" && !line.starts_with("note:") {
                stderr_lines.push(line.trim().to_owned());
            }
        }
    }
    if let Some(marked) = stderr_lines.iter().rev().find(|l| l.starts_with(KIT_ERROR_PREFIX)) {
        return Some(marked.clone());
    }
    let tail = &stderr_lines[stderr_lines.len().saturating_sub(2)..];
    (!tail.is_empty()).then(|| tail.join(" "))
}
