//! Running a simulation: every policy set on every trace, in parallel.
//!
//! Each trace is read once, by one thread, and handed in chunks to one
//! thread per policy set and one for the oracle (bounded channels, so a
//! trace of any length streams through in constant memory). A set's thread
//! builds the pool exactly as the host does (its plan, guardrails, policies
//! from the registry, optionally a journal) on the simulated fleet and
//! source, and calls the control loop's own [`PoolLoop::tick`] once per
//! step under a virtual clock.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::elasticity::{Elasticity, ElasticityMetrics, demand};
pub use super::prepare::{Prepared, prepare, prepare_config, registry_for};
use super::fleet::{FleetBill, SimFleet, Spot};
use super::oracle::{Billing, Oracle, OracleResult};
use super::series::Series;
use super::source::SimSource;
use super::spec::{Environment, Fixed, SimSpec, TraceSpec};
use super::trace::{TraceReader, TraceStats};
use crate::config::{PoolConfig, ProviderConfig};
use crate::control::clock::VirtualClock;
use crate::control::pool::{self, MetricSpec, PoolSettings};
use crate::decide::pipeline::Experts;
use crate::journal::Journal;
use crate::policy::{InstanceMode, PolicyEngine, SandboxOptions};

/// Virtual time starts here (2024-01-01T00:00Z); only differences matter.
pub const ORIGIN_MS: i64 = 1_704_067_200_000;
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces every set's policy directory.
    pub policy_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub max_steps: Option<u64>,
    /// Write each (trace, set)'s decisions to a journal here.
    pub journal_dir: Option<PathBuf>,
    /// Keep every step's desired capacity (for comparisons in tests).
    pub keep_desired: bool,
    /// Score from this step on, whatever the environment's `warmup` says
    /// (tuning scores its held-back part this way).
    pub score_from: Option<u64>,
}

/// One policy set on one trace.
#[derive(Debug, Clone, Serialize)]
pub struct SetResult {
    pub set: String,
    pub failed: Option<String>,
    pub metrics: ElasticityMetrics,
    pub bill: FleetBill,
    pub instance_hours: f64,
    pub cost: f64,
    /// Cost over the oracle's.
    pub cost_ratio: Option<f64>,
    pub decisions: u64,
    pub actions: u64,
    /// Votes a strategy declined on purpose (no opinion at that point), and
    /// the steps with any.
    pub declined: u64,
    pub declined_steps: u64,
    /// Votes that failed (errors, missing data, traps, timeouts), and the
    /// steps with any: counted apart from declines, which are not faults.
    pub faults: u64,
    pub faulted_steps: u64,
    pub wall_ms: u64,
    #[serde(skip)]
    pub supply: Series,
    #[serde(skip)]
    pub desired: Vec<u32>,
}

impl SetResult {
    fn failed(set: &str, why: String) -> Self {
        SetResult {
            set: set.into(),
            failed: Some(why),
            metrics: ElasticityMetrics::default(),
            bill: FleetBill::default(),
            instance_hours: 0.0,
            cost: 0.0,
            cost_ratio: None,
            decisions: 0,
            actions: 0,
            declined: 0,
            declined_steps: 0,
            faults: 0,
            faulted_steps: 0,
            wall_ms: 0,
            supply: Series::default(),
            desired: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceResult {
    pub name: String,
    pub path: String,
    pub steps: u64,
    pub step_secs: u64,
    pub capacity: f64,
    pub boot_steps: u64,
    pub drain_steps: u64,
    /// Steps at the start that were not scored.
    pub warmup_steps: u64,
    pub stats: TraceStats,
    pub error: Option<String>,
    pub oracle: OracleResult,
    pub oracle_cost: f64,
    pub sets: Vec<SetResult>,
    #[serde(skip)]
    pub demand: Series,
    #[serde(skip)]
    pub oracle_supply: Series,
}

/// Lower this thread's scheduling priority by `lighter` steps (nice values).
///
/// Sets run in parallel, one thread each, and a run lasts as long as its
/// slowest set. With fair scheduling the heaviest set (say five policy calls
/// a step against others' one) gets the same share of the cores as the
/// light ones, finishes last and alone; letting light sets yield to it keeps
/// the cores busy until the end. Lowering one's own priority needs no
/// privilege; where it fails nothing changes but the order.
fn yield_to_heavier_sets(lighter: usize) {
    if lighter == 0 {
        return;
    }
    // SAFETY: gettid and setpriority only read their arguments.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, (lighter * 2).min(19) as libc::c_int);
    }
}

/// Progress across all runs, for the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes_read: AtomicU64,
    pub bytes_total: AtomicU64,
}

/// The sandbox for simulations: warm instances (each set calls its
/// policies once a step, tens of thousands of times).
pub fn engine(cache_dir: Option<&Path>) -> anyhow::Result<Arc<PolicyEngine>> {
    let cache = match cache_dir {
        Some(d) => Some(crate::policy::cache::ArtifactCache::new(d)?),
        None => None,
    };
    let options = SandboxOptions { instance_mode: InstanceMode::Warm { max_calls: 100_000 }, ..SandboxOptions::default() };
    Ok(Arc::new(PolicyEngine::new(options, cache)?))
}

/// Run every set on every trace.
/// A trace that cannot be read is reported as failed; the others run.
pub fn run(spec: &SimSpec, options: &RunOptions, progress: &Arc<Progress>) -> anyhow::Result<Vec<TraceResult>> {
    let engine = engine(options.cache_dir.as_deref())?;
    let sets = prepare(spec, options, &engine);
    run_prepared(spec, sets, options, progress)
}

/// Run sets already prepared (`scalewise tune` builds its candidates in
/// memory) on every trace of `spec`; `spec.sets` is not read.
pub fn run_prepared(spec: &SimSpec, sets: Vec<(String, Prepared)>, options: &RunOptions, progress: &Arc<Progress>) -> anyhow::Result<Vec<TraceResult>> {
    let sets = Arc::new(sets);
    for t in &spec.traces {
        if let Ok(m) = std::fs::metadata(&t.path) {
            progress.bytes_total.fetch_add(m.len(), Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = spec.traces.iter().map(|t| scope.spawn(|| run_trace(&spec.environment, t, &sets, options, progress))).collect();
        let results = handles.into_iter().zip(&spec.traces).map(|(h, t)| match h.join().expect("a trace thread panicked") {
            Ok(r) => r,
            Err(e) => unreadable(&spec.environment, t, &sets, e.to_string()),
        });
        Ok(results.collect())
    })
}

fn unreadable(env: &Environment, t: &TraceSpec, sets: &[(String, Prepared)], error: String) -> TraceResult {
    TraceResult {
        name: t.name(),
        path: t.path.display().to_string(),
        steps: 0,
        step_secs: t.step_secs.unwrap_or(env.step_secs),
        capacity: t.capacity.unwrap_or(env.capacity),
        boot_steps: t.boot_steps.unwrap_or(env.boot_steps),
        drain_steps: t.drain_steps.unwrap_or(env.drain_steps),
        warmup_steps: 0,
        stats: TraceStats::default(),
        sets: sets.iter().map(|(name, _)| SetResult::failed(name, format!("not run: {error}"))).collect(),
        error: Some(error),
        oracle: OracleResult::default(),
        oracle_cost: 0.0,
        demand: Series::default(),
        oracle_supply: Series::default(),
    }
}

fn open(path: &Path) -> Result<Box<dyn Read + Send>, String> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    std::fs::File::open(path).map(|f| Box::new(f) as Box<dyn Read + Send>).map_err(|e| format!("cannot read trace {}: {e}", path.display()))
}

/// Counts bytes as they are read, for the progress bar.
struct Counted<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A first pass over a file: its steps and its busiest step's load.
pub fn scan(path: &Path, max_steps: Option<u64>) -> Result<(u64, f64), String> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err("it cannot read a pipe".into());
    }
    let reader = TraceReader::new(BufReader::new(open(path)?)).limit(max_steps);
    Ok(reader.fold((0, 0.0), |(n, peak), l| (n + 1, f64::max(peak, l))))
}

/// The per-instance capacity with which the busiest load needs exactly
/// `instances` instances.
pub fn capacity_for(peak: f64, instances: u32) -> f64 {
    if peak <= 0.0 {
        return 1.0;
    }
    let mut capacity = peak / f64::from(instances);
    // Rounding may leave peak / capacity a hair above `instances`.
    while demand(peak, capacity) > instances {
        capacity = capacity.next_up();
    }
    capacity
}

fn run_trace(env: &Environment, t: &TraceSpec, sets: &Arc<Vec<(String, Prepared)>>, options: &RunOptions, progress: &Arc<Progress>) -> anyhow::Result<TraceResult> {
    let name = t.name();
    let mut capacity = t.capacity.unwrap_or(env.capacity);
    let peak_instances = t.peak_instances.or(env.peak_instances);
    let warmup = t.warmup.unwrap_or(env.warmup);
    let scenario = peak_instances.is_some() || warmup > 0.0;
    let peak_set = sets.iter().any(|(_, p)| matches!(p, Prepared::Fixed(Fixed::Named(_))));
    // One first pass serves the scenario and every `fixed = "peak"` set.
    let first_pass = (scenario || peak_set).then(|| scan(&t.path, options.max_steps));
    let mut warmup_steps = 0;
    if let Some(pass) = first_pass.as_ref().filter(|_| scenario) {
        let (steps, peak) = pass.clone().map_err(|e| anyhow::anyhow!("`peak_instances` or `warmup` needs the trace twice; {e}"))?;
        if let Some(n) = peak_instances {
            capacity = capacity_for(peak, n);
        }
        warmup_steps = (steps as f64 * warmup).floor() as u64;
    }
    if let Some(from) = options.score_from {
        warmup_steps = from;
    }
    let step_secs = t.step_secs.unwrap_or(env.step_secs);
    let billing = Billing {
        step_secs,
        granularity_secs: env.billing_secs,
        boot_steps: t.boot_steps.unwrap_or(env.boot_steps),
        drain_steps: t.drain_steps.unwrap_or(env.drain_steps),
    };
    let input = open(&t.path).map_err(anyhow::Error::msg)?;
    let reader = TraceReader::new(BufReader::with_capacity(1 << 16, Counted { inner: input, progress: progress.clone() })).limit(options.max_steps);
    let ctx = TraceCtx { env: env.clone(), name: name.clone(), capacity, billing, warmup_steps, first_pass, options: options.clone() };

    let mut senders: Vec<SyncSender<Arc<Vec<f64>>>> = Vec::new();
    let mut channel = || {
        let (tx, rx) = sync_channel::<Arc<Vec<f64>>>(4);
        senders.push(tx);
        rx
    };
    let oracle_rx = channel();
    let set_rxs: Vec<Receiver<Arc<Vec<f64>>>> = sets.iter().map(|_| channel()).collect();
    std::thread::scope(|scope| {
        let reader_thread = scope.spawn(move || broadcast(reader, senders));
        let ctx = &ctx;
        let oracle_thread = scope.spawn(move || run_oracle(ctx, oracle_rx));
        let heaviest = sets.iter().map(|(_, p)| p.calls_per_step()).max().unwrap_or(0);
        let set_threads: Vec<_> = sets
            .iter()
            .zip(set_rxs)
            .map(|((set, prepared), rx)| {
                let lighter = heaviest - prepared.calls_per_step();
                scope.spawn(move || {
                    yield_to_heavier_sets(lighter);
                    run_set(ctx, set, prepared, rx)
                })
            })
            .collect();
        let (stats, error) = reader_thread.join().expect("reader thread");
        let (oracle, demand, oracle_supply) = oracle_thread.join().expect("oracle thread");
        let oracle_hours = billing.hours(oracle.units);
        let oracle_cost = oracle_hours * env.hourly;
        let mut results: Vec<SetResult> = set_threads.into_iter().map(|h| h.join().expect("set thread")).collect();
        for (r, (_, prepared)) in results.iter_mut().zip(sets.iter()) {
            let floor = oracle_hours * price_floor(env, prepared);
            if r.failed.is_none() && floor > 0.0 {
                r.cost_ratio = Some(r.cost / floor);
            }
        }
        let error = error.or_else(|| (stats.steps == 0).then(|| format!("trace {}: no rows with a load", t.path.display())));
        Ok(TraceResult { name, path: t.path.display().to_string(), steps: stats.steps, step_secs, capacity, boot_steps: billing.boot_steps, drain_steps: billing.drain_steps, warmup_steps, stats, error, oracle, oracle_cost, sets: results, demand, oracle_supply })
    })
}

/// The price of the oracle's instance-hours when compared with a set:
/// on-demand, or the cheaper spot price for a set that buys spot (so the
/// ratio stays a bound no mix of instances can beat).
fn price_floor(env: &Environment, set: &Prepared) -> f64 {
    match (env.spot_hourly, set) {
        (Some(spot), Prepared::Pool { pool, .. })
            if matches!(pool.provider, ProviderConfig::Simulated { spot_share } if spot_share > 0.0) || pool.cost_rules.iter().any(|r| r == "spot-mix") =>
        {
            spot.min(env.hourly)
        }
        _ => env.hourly,
    }
}

struct TraceCtx {
    env: Environment,
    name: String,
    capacity: f64,
    billing: Billing,
    /// Steps before this one are run but not scored.
    warmup_steps: u64,
    /// The trace's steps and busiest load, when something needed them first.
    first_pass: Option<Result<(u64, f64), String>>,
    options: RunOptions,
}

fn broadcast<R: BufRead>(mut reader: TraceReader<R>, senders: Vec<SyncSender<Arc<Vec<f64>>>>) -> (TraceStats, Option<String>) {
    loop {
        let chunk: Vec<f64> = reader.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let chunk = Arc::new(chunk);
        for s in &senders {
            // A consumer that stopped (a failed set) no longer listens.
            let _ = s.send(chunk.clone());
        }
    }
    let error = reader.error().map(str::to_owned);
    (reader.stats, error)
}

fn run_oracle(ctx: &TraceCtx, rx: Receiver<Arc<Vec<f64>>>) -> (OracleResult, Series, Series) {
    let mut oracle = Oracle::new(ctx.billing);
    let mut demands = Series::default();
    let mut t = 0u64;
    for chunk in rx {
        for &load in chunk.iter() {
            let d = demand(load, ctx.capacity);
            demands.push(d as f64);
            if t >= ctx.warmup_steps {
                oracle.observe(d);
            }
            t += 1;
        }
    }
    let (result, supply) = oracle.finish();
    (result, demands, supply)
}

fn run_set(ctx: &TraceCtx, set: &str, prepared: &Prepared, rx: Receiver<Arc<Vec<f64>>>) -> SetResult {
    let started = Instant::now();
    let mut result = match prepared {
        Prepared::Failed(why) => SetResult::failed(set, why.clone()),
        Prepared::Fixed(f) => {
            let count = match f {
                Fixed::Count(n) => Ok(*n),
                _ => match ctx.first_pass.as_ref().expect("scanned for every trace with a peak set") {
                    Ok((_, peak)) => Ok(demand(*peak, ctx.capacity)),
                    Err(e) => Err(format!("`fixed = \"peak\"` needs the trace twice; {e}")),
                },
            };
            match count {
                Ok(n) => simulate(ctx, set, None, rx, Some(n)),
                Err(e) => SetResult::failed(set, e),
            }
        }
        Prepared::Pool { pool, experts } => simulate(ctx, set, Some((pool, experts.clone() as Arc<dyn Experts>)), rx, None),
    };
    result.wall_ms = started.elapsed().as_millis() as u64;
    result
}

/// One set on one trace. `fixed` holds the capacity still (no policies).
fn simulate(ctx: &TraceCtx, set: &str, pool: Option<(&PoolConfig, Arc<dyn Experts>)>, rx: Receiver<Arc<Vec<f64>>>, fixed: Option<u32>) -> SetResult {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let env = &ctx.env;
        let step_ms = ctx.billing.step_secs as i64 * 1000;
        let clock = Arc::new(VirtualClock::new(ORIGIN_MS));
        let spot_share = match pool.as_ref().map(|p| &p.0.provider) {
            Some(ProviderConfig::Simulated { spot_share }) => *spot_share,
            _ => 0.0,
        };
        let spot = Spot { share: spot_share, hourly: env.spot_hourly.unwrap_or(env.hourly), interruptions_per_hour: env.spot_interruptions_per_hour, seed: env.seed, storms: env.spot_storms.clone() };
        let spot_hourly = spot.hourly;
        let mut chunks = rx.into_iter();
        let Some(first_chunk) = chunks.next() else { return SetResult::failed(set, "the trace has no rows".into()) };
        let (min, max) = pool.as_ref().map_or((0, u32::MAX), |p| (p.0.min, p.0.max));
        let initial = fixed.or(env.initial).unwrap_or_else(|| demand(first_chunk[0], ctx.capacity)).clamp(min, max);
        let fleet = Arc::new(SimFleet::new(clock.clone(), ORIGIN_MS, ctx.billing, spot, initial).with_quota(env.quota));
        let source = Arc::new(SimSource::new(fleet.clone(), ORIGIN_MS, step_ms, ctx.capacity, env.target_utilization));
        let mut pool_loop = match pool {
            Some((p, experts)) => match build_loop(ctx, set, p, experts, &fleet, &source, &clock).await {
                Ok(l) => Some(l),
                Err(e) => return SetResult::failed(set, e),
            },
            None => None,
        };
        let mut elasticity = Elasticity::default();
        let mut supply = Series::default();
        let mut desired = Vec::new();
        let mut abstentions = Abstentions::default();
        let mut before_scoring = FleetBill::default();
        let mut t = 0u64;
        for chunk in std::iter::once(first_chunk).chain(chunks) {
            for &load in chunk.iter() {
                clock.set(ORIGIN_MS + t as i64 * step_ms);
                let (running, _) = fleet.advance(t);
                source.append(load);
                if t == ctx.warmup_steps && t > 0 {
                    before_scoring = fleet.bill_until(t);
                }
                if t >= ctx.warmup_steps {
                    let can_serve = running as f64 * ctx.capacity / env.target_utilization;
                    elasticity.observe(demand(load, ctx.capacity), running, load, can_serve);
                }
                supply.push(running as f64);
                if let Some(l) = pool_loop.as_mut() {
                    l.tick().await;
                    let want = l.inspect_last(|r| {
                        abstentions.count(&r.votes);
                        r.desired
                    });
                    let want = want.unwrap_or(0);
                    if ctx.options.keep_desired {
                        desired.push(want);
                    }
                }
                t += 1;
            }
        }
        let bill = fleet.finish(t).since(&before_scoring);
        let hours_od = ctx.billing.hours(bill.on_demand_units);
        let hours_spot = ctx.billing.hours(bill.spot_units);
        let (decisions, actions) = pool_loop.as_ref().map_or((0, 0), |l| l.counts());
        SetResult {
            set: set.into(),
            failed: None,
            metrics: elasticity.finish(),
            bill,
            instance_hours: hours_od + hours_spot,
            cost: hours_od * env.hourly + hours_spot * spot_hourly,
            cost_ratio: None,
            decisions,
            actions,
            declined: abstentions.declined,
            declined_steps: abstentions.declined_steps,
            faults: abstentions.faults,
            faulted_steps: abstentions.faulted_steps,
            wall_ms: 0,
            supply,
            desired,
        }
    })
}

/// Votes without a proposal, declines and faults apart.
#[derive(Default)]
struct Abstentions {
    declined: u64,
    declined_steps: u64,
    faults: u64,
    faulted_steps: u64,
}

impl Abstentions {
    fn count(&mut self, votes: &[crate::decide::record::ExpertVote]) {
        let declined = votes.iter().filter(|v| v.abstained.is_some() && v.declined).count() as u64;
        let faults = votes.iter().filter(|v| v.abstained.is_some() && !v.declined).count() as u64;
        self.declined += declined;
        self.declined_steps += u64::from(declined > 0);
        self.faults += faults;
        self.faulted_steps += u64::from(faults > 0);
    }
}

/// A pool's settings on the simulated fleet and source: its config's plan,
/// guardrails and metric windows, ticking once a step. The live-vs-simulated
/// test builds its live pool with this too.
pub fn pool_settings(p: &PoolConfig, step: Duration, fleet: &Arc<SimFleet>, source: &Arc<SimSource>) -> PoolSettings {
    let metrics = p
        .metrics
        .iter()
        .map(|m| MetricSpec {
            name: m.name.clone(),
            source: source.clone(),
            query: m.query.clone().unwrap_or_else(|| m.name.clone()),
            window: Duration::from_secs(m.window_secs).max(step),
            step,
        })
        .collect();
    PoolSettings {
        plan: crate::service::plan(p),
        interval: step,
        dry_run: false,
        approval_above: None,
        approval_ttl: Duration::from_secs(300),
        metrics,
        target: fleet.clone(),
        leader: None,
        // Off in the simulator: a model is not asked about a trace (a
        // journal's recorded answers replay with `--from-journal`).
        advisor: None,
    }
}

async fn build_loop(
    ctx: &TraceCtx,
    set: &str,
    p: &PoolConfig,
    experts: Arc<dyn Experts>,
    fleet: &Arc<SimFleet>,
    source: &Arc<SimSource>,
    clock: &Arc<VirtualClock>,
) -> Result<pool::PoolLoop, String> {
    let settings = pool_settings(p, Duration::from_secs(ctx.billing.step_secs), fleet, source);
    let journal = match &ctx.options.journal_dir {
        Some(dir) => {
            let path = dir.join(&ctx.name).join(format!("{set}.redb"));
            // A replay starts from nothing: an old journal would restore old memory.
            let _ = std::fs::remove_file(&path);
            Some(Journal::open_detached(&path).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let (_, l) = pool::prepare(settings, experts, journal, clock.clone()).await?;
    Ok(l)
}
