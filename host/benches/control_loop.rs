//! The control loop's own cost: pools deciding once a second, each with
//! three strategies, a consensus and a cost rule (all wasm), the guardrails
//! and the journal (redb on disk, group commit); the provider is an
//! in-memory target, so provider I/O is excluded.
//!
//! Reports, for 1,000 and 10,000 pools: decisions per second, CPU use of
//! the whole process (cores), and two tick lags over the measured seconds
//! (after a 3-second warm-up), p50/p99/max: from a tick's due time to its
//! decision being made (the evaluation lag), and to that decision being
//! durable in the journal (which adds the wait for the disk's fsync). Run with
//! `cargo bench -p scalewise --bench control_loop`; `SCALEWISE_BENCH_POOLS`
//! (comma-separated) and `SCALEWISE_BENCH_SECS` change the sizes and length.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use scalewise::control::clock::WallClock;
use scalewise::control::pool::{self, MetricSpec, PoolSettings};
use scalewise::control::{LagOf, PoolHandle};
use scalewise::decide::budget::CostSpec;
use scalewise::decide::guardrails::Guardrails;
use scalewise::decide::pipeline::{ExpertSpec, PoolPlan};
use scalewise::journal::Journal;
use scalewise::policy::{InstanceMode, PolicyEngine, Registry, SandboxOptions};
use scalewise::timing::LatencyHistogram;
use scalewise_providers::sources::push::PushSource;
use scalewise_providers::{Member, MemberState, PoolState, ProviderError, Sample, ScaleOutcome, Target};
use scalewise_sdk::InstanceKind;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A target that holds a number and answers at once.
struct MemoryTarget {
    n: AtomicU32,
}

#[async_trait]
impl Target for MemoryTarget {
    fn kind(&self) -> &'static str {
        "memory"
    }
    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        self.state().await
    }
    async fn state(&self) -> Result<PoolState, ProviderError> {
        let members = (0..self.n.load(Ordering::Relaxed)).map(|i| Member::new(format!("m{i}"), MemberState::Active, 0)).collect();
        Ok(PoolState { members })
    }
    async fn scale_to(&self, desired: u32) -> Result<ScaleOutcome, ProviderError> {
        self.n.store(desired, Ordering::Relaxed);
        Ok(ScaleOutcome { capacity: desired, ..Default::default() })
    }
}

const SETTINGS: [(&str, &str); 5] = [
    ("target-tracking", r#"{"metrics":[{"name":"cpu","target":0.6}]}"#),
    ("step-scaling", r#"{"metric":"cpu","scale_out":{"threshold":0.7,"steps":[{"lower":0.0,"adjustment":1}]},"scale_in":{"threshold":0.3,"steps":[{"upper":0.0,"adjustment":-1}]}}"#),
    ("queue-depth", r#"{"target_per_worker":10}"#),
    ("weighted-vote", "{}"),
    ("budget-cap", r#"{"max_hourly":25.0}"#),
];

fn main() {
    let secs: u64 = std::env::var("SCALEWISE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let sizes: Vec<usize> = std::env::var("SCALEWISE_BENCH_POOLS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or(vec![1_000, 10_000]);
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    std::fs::create_dir_all(&policies).unwrap();
    for (name, _) in SETTINGS {
        let built = scalewise::command::build_policy_crate(&root().join("policies").join(name), &root().join("target/bench-policies")).unwrap();
        std::fs::copy(built, policies.join(format!("{name}.wasm"))).unwrap();
    }
    let engine = Arc::new(
        PolicyEngine::new(SandboxOptions { instance_mode: InstanceMode::Warm { max_calls: 10_000 }, ..Default::default() }, None).unwrap(),
    );
    let settings: HashMap<String, String> = SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let registry = Arc::new(Registry::new(engine, &policies, settings));
    let report = registry.rescan();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    one_pool(&registry);
    println!("control loop: 3 strategies + consensus + cost rule per pool (wasm, warm instances), guardrails, redb journal; in-memory target");
    println!("{:>7} {:>9} {:>12} {:>6} {:>32} {:>32}", "", "", "", "", "evaluation lag, ms", "recorded lag, ms");
    println!(
        "{:>7} {:>9} {:>12} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "pools", "interval", "decisions/s", "cores", "p50", "p99", "max", "p50", "p99", "max"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    for n in sizes {
        runtime.block_on(run(n, secs, registry.clone(), dir.path()));
    }
}

/// Three series of a minute of per-second samples ending at `now`.
fn fed_source(now: i64) -> Vec<MetricSpec> {
    let window = |f: fn(i64) -> f64| (0..60).map(|i| Sample { at: now - 60_000 + i * 1000, value: f(i) }).collect::<Vec<_>>();
    let push = Arc::new(PushSource::new());
    push.push("cpu", &window(|i| 0.5 + 0.01 * (i % 7) as f64)).unwrap();
    push.push("rps", &window(|i| 900.0 + i as f64)).unwrap();
    push.push("queue_depth", &window(|i| (30 + i % 11) as f64)).unwrap();
    ["cpu", "rps", "queue_depth"]
        .into_iter()
        .map(|m| MetricSpec { name: m.into(), source: push.clone(), query: m.into(), window: Duration::from_secs(120), step: Duration::from_secs(1) })
        .collect()
}

/// Pool `i`: its plan, fed windows ending at `now`, four members in memory.
fn settings(i: usize, now: i64) -> PoolSettings {
    PoolSettings {
        plan: plan(i),
        interval: Duration::from_secs(1),
        dry_run: false,
        approval_above: None,
        approval_ttl: Duration::from_secs(60),
        metrics: fed_source(now),
        target: Arc::new(MemoryTarget { n: AtomicU32::new(4) }),
        leader: None,
        advisor: None,
    }
}

fn plan(i: usize) -> PoolPlan {
    PoolPlan {
        id: format!("pool-{i}"),
        min: 1,
        max: 50,
        strategies: ["target-tracking", "step-scaling", "queue-depth"].into_iter().map(|p| ExpertSpec { policy: p.into(), weight: 1.0 }).collect(),
        consensus: Some("weighted-vote".into()),
        cost_rules: vec!["budget-cap".into()],
        cost: CostSpec { kind: Some("m".into()), catalog: vec![InstanceKind { name: "m".into(), on_demand_hourly: 0.1, vcpus: 2.0, memory_gib: 4.0, ..Default::default() }], budget_limit: Some(1000.0), ..Default::default() },
        guardrails: Guardrails::default(),
        limits: vec![],
        instances: Default::default(),
        candidate: None,
    }
}

/// One pool's whole tick, timed call by call: read the target, collect the
/// windows, the pipeline (five wasm calls), guardrails, act, publish. No
/// journal (its commit wait is I/O) and an in-memory target.
fn one_pool(registry: &Arc<Registry>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let now = scalewise_providers::now_ms();
    let clock = Arc::new(scalewise::control::clock::VirtualClock::new(now));
    let (_, mut l) = runtime.block_on(pool::prepare(settings(0, now), registry.clone(), None, clock.clone())).unwrap();
    let mut t = now;
    let p = scalewise::timing::measure(20_000, || {
        t += 1;
        clock.set(t);
        runtime.block_on(l.tick());
    });
    println!("one pool's tick (3 strategies + consensus + cost rule, guardrails, act; no journal): p50 {:.1} µs, p99 {:.1} µs over 20000 ticks\n", p.p50, p.p99);
}

async fn run(n: usize, secs: u64, registry: Arc<Registry>, dir: &Path) {
    let journal = match std::env::var("SCALEWISE_BENCH_JOURNAL").as_deref() {
        Ok("0") => None,
        _ => Some(Journal::open(&dir.join(format!("journal-{n}.redb"))).unwrap()),
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let now = scalewise_providers::now_ms();
    let mut handles = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (h, t) = pool::start(settings(i, now), registry.clone(), journal.clone(), Arc::new(WallClock), rx.clone()).await.unwrap();
        handles.push(h);
        tasks.push(t);
    }
    // Let every pool tick a couple of times, then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let decisions = |hs: &[Arc<PoolHandle>]| hs.iter().map(|h| h.snapshot().decisions).sum::<u64>();
    let lags = |hs: &[Arc<PoolHandle>], which: LagOf| {
        let merged = LatencyHistogram::default();
        hs.iter().for_each(|h| merged.merge(which(h)));
        merged
    };
    let (decided, recorded): (LagOf, LagOf) = (|h| &h.decide_lag, |h| &h.lag);
    let (warm_decided, warm_recorded) = (lags(&handles, decided), lags(&handles, recorded));
    let (d0, c0, t0) = (decisions(&handles), scalewise::timing::cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (d1, c1, elapsed) = (decisions(&handles), scalewise::timing::cpu_seconds(), t0.elapsed().as_secs_f64());
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    // Lag percentiles over the ticks of the measured seconds: to the
    // decision being made (the evaluation's own lag), and to its record
    // being durable (which adds the journal's wait for the disk).
    let decide = lags(&handles, decided).since(&warm_decided);
    let record = lags(&handles, recorded).since(&warm_recorded);
    if std::env::var_os("SCALEWISE_BENCH_SHOW").is_some() {
        let r = &handles[0].recent(None, 1)[0];
        eprintln!("record json: {} bytes\n{}", serde_json::to_vec(r).unwrap().len(), serde_json::to_string_pretty(r).unwrap());
    }
    let ms = |h: &LatencyHistogram, q: f64| h.quantile_micros(q).unwrap_or(f64::NAN) / 1000.0;
    println!(
        "{:>7} {:>9} {:>12.0} {:>6.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
        n,
        "1 s",
        (d1 - d0) as f64 / elapsed,
        (c1 - c0) / elapsed,
        ms(&decide, 0.5),
        ms(&decide, 0.99),
        ms(&decide, 1.0),
        ms(&record, 0.5),
        ms(&record, 0.99),
        ms(&record, 1.0)
    );
}
