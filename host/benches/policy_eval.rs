//! Policy evaluation latency: every built-in policy as a wasm component with
//! a fresh instance per call and with a reused instance, the same code
//! natively, and an equivalent rhai rule; plus hot-swap latency under load.
//!
//! Run with `cargo bench -p scalewise --bench policy_eval`. Each call is
//! timed on its own, in rounds (see `timing::Rounds`): the table reports the
//! median round's p50 and p99 in microseconds, and a second table the lowest
//! and highest p99 of any round for the wasm columns.
//! `SCALEWISE_BENCH_ITERATIONS` sets the number of timed calls (default
//! 20000), `SCALEWISE_BENCH_ROUNDS` the rounds they are split into (default 5).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scalewise::policy::watch::Watcher;
use scalewise::policy::{
    AnyInput, Compiler, InstanceMode, Policy, PolicyEngine, PolicySource, PolicyStatus, Registry, SandboxOptions,
};
use scalewise::timing::{Percentiles, Rounds, measure_rounds};
use scalewise_sdk::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

struct Case {
    name: &'static str,
    settings: &'static str,
    native: Box<dyn Fn()>,
    input: AnyInput,
}

const NOW: i64 = 1_700_000_000_000;

fn pool() -> Pool {
    Pool { id: "web".into(), running: 8, booting: 1, min: 2, max: 64 }
}

fn strategy_input(settings: &str) -> StrategyInput {
    // One minute of per-second samples, as a live pool would have.
    let window = |name: &str, f: fn(i64) -> f64| {
        MetricWindow::new(name, (0..60).map(|i| Sample { at: NOW - 60_000 + i * 1000, value: f(i) }).collect())
    };
    StrategyInput {
        pool: pool(),
        metrics: vec![
            window("cpu", |i| 0.55 + 0.2 * ((i as f64) / 10.0).sin()),
            window("rps", |i| 900.0 + 5.0 * i as f64),
            window("queue_depth", |i| (40 + i) as f64),
        ],
        now: NOW,
        recent_actions: vec![Action { at: NOW - 300_000, from: 6, to: 9, reason: "scale up".into() }],
        settings: settings.into(),
        state: None,
    }
}

fn consensus_input(settings: &str) -> ConsensusInput {
    let vote = |expert: &str, d: f64| Vote {
        expert: expert.into(),
        weight: 1.0,
        ballot: Ballot::Proposed(Proposal::new(d, 0.8, format!("{expert} wants {d}"))),
    };
    ConsensusInput {
        pool: pool(),
        votes: vec![
            vote("target-tracking", 11.0),
            vote("queue-depth", 12.0),
            vote("step-scaling", 10.0),
            Vote { expert: "predictive".into(), weight: 2.0, ballot: Ballot::Abstained("timed out".into()) },
        ],
        now: NOW,
        settings: settings.into(),
        state: None,
    }
}

fn cost_input(settings: &str) -> CostInput {
    let kind = |name: &str, price: f64| InstanceKind {
        name: name.into(),
        on_demand_hourly: price,
        spot_hourly: Some(price / 3.0),
        vcpus: 2.0,
        memory_gib: 8.0,
        ..Default::default()
    };
    CostInput {
        pool: pool(),
        proposed: 20,
        kind: Some("m.large".into()),
        catalog: vec![kind("m.medium", 0.05), kind("m.large", 0.1), kind("m.xlarge", 0.2)],
        budget: None,
        now: NOW,
        settings: settings.into(),
        ..Default::default()
    }
}

fn cases() -> Vec<Case> {
    const TT: &str = r#"{"metrics":[{"name":"cpu","target":0.5}]}"#;
    const SS: &str = r#"{"metric":"cpu","scale_out":{"threshold":0.5,"steps":[{"lower":0,"upper":0.1,"adjustment":1},{"lower":0.1,"adjustment":3}]}}"#;
    const QD: &str = r#"{"target_per_worker":5}"#;
    const BC: &str = r#"{"max_hourly":1.5}"#;
    let s = |settings: &'static str| strategy_input(settings);
    vec![
        Case {
            name: "target-tracking",
            settings: TT,
            native: { let i = s(TT); Box::new(move || { std::hint::black_box(run_strategy::<target_tracking::TargetTracking>(&i).ok()); }) },
            input: AnyInput::Strategy(s(TT)),
        },
        Case {
            name: "step-scaling",
            settings: SS,
            native: { let i = s(SS); Box::new(move || { std::hint::black_box(run_strategy::<step_scaling::StepScaling>(&i).ok()); }) },
            input: AnyInput::Strategy(s(SS)),
        },
        Case {
            name: "queue-depth",
            settings: QD,
            native: { let i = s(QD); Box::new(move || { std::hint::black_box(run_strategy::<queue_depth::QueueDepth>(&i).ok()); }) },
            input: AnyInput::Strategy(s(QD)),
        },
        Case {
            name: "weighted-vote",
            settings: "{}",
            native: { let i = consensus_input("{}"); Box::new(move || { std::hint::black_box(run_consensus::<weighted_vote::WeightedVote>(&i).ok()); }) },
            input: AnyInput::Consensus(consensus_input("{}")),
        },
        Case {
            name: "safest",
            settings: "{}",
            native: { let i = consensus_input("{}"); Box::new(move || { std::hint::black_box(run_consensus::<safest::Safest>(&i).ok()); }) },
            input: AnyInput::Consensus(consensus_input("{}")),
        },
        Case {
            name: "budget-cap",
            settings: BC,
            native: { let i = cost_input(BC); Box::new(move || { std::hint::black_box(run_cost_rule::<budget_cap::BudgetCap>(&i).ok()); }) },
            input: AnyInput::CostRule(cost_input(BC)),
        },
    ]
}

fn load(engine: &Arc<PolicyEngine>, path: &Path, settings: &str) -> Policy {
    let bytes = std::fs::read(path).unwrap();
    let src = PolicySource { id: "bench", path, bytes: &bytes, settings, generation: 1 };
    Policy::load(engine, src, Arc::new(PolicyStatus::default())).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn timed(policy: &Policy, input: &AnyInput, rounds: u32, iterations: u32) -> Rounds {
    input.evaluate(policy).unwrap_or_else(|e| panic!("{:?}: {e}", policy.id));
    measure_rounds(rounds, iterations, || {
        std::hint::black_box(input.evaluate(policy).ok());
    })
}

fn main() {
    let env = |name: &str, default: u32| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let iterations = env("SCALEWISE_BENCH_ITERATIONS", 20_000);
    let rounds = env("SCALEWISE_BENCH_ROUNDS", 5).clamp(1, iterations.max(1));
    let out_dir = root().join("target/bench-policies");
    let fresh = Arc::new(PolicyEngine::new(SandboxOptions::default(), None).unwrap());
    let warm = Arc::new(
        PolicyEngine::new(SandboxOptions { instance_mode: InstanceMode::Warm { max_calls: u64::MAX }, ..Default::default() }, None).unwrap(),
    );
    println!(
        "policy evaluation latency, µs ({iterations} timed calls each in {rounds} rounds; the median round; ratios against native p50)"
    );
    let mut spreads = Vec::new();
    println!(
        "{:<16} {:>17} {:>17} {:>15} {:>15} {:>8} {:>8} {:>8}",
        "policy", "wasm fresh p50/99", "wasm reuse p50/99", "native p50/99", "rhai p50/99", "fresh×", "reuse×", "rhai×"
    );
    for case in cases() {
        let component = scalewise::command::build_policy_crate(&root().join("policies").join(case.name), &out_dir).unwrap();
        let rhai = root().join("host/benches/rhai").join(format!("{}.rhai", case.name));
        let f = timed(&load(&fresh, &component, case.settings), &case.input, rounds, iterations);
        let w = timed(&load(&warm, &component, case.settings), &case.input, rounds, iterations);
        let n = measure_rounds(rounds, iterations, &case.native).median();
        let r = timed(&load(&fresh, &rhai, case.settings), &case.input, rounds, iterations).median();
        spreads.push((case.name, f.p99_range(), w.p99_range()));
        let (f, w) = (f.median(), w.median());
        let pair = |p: Percentiles| format!("{:.2}/{:.2}", p.p50, p.p99);
        println!(
            "{:<16} {:>17} {:>17} {:>15} {:>15} {:>8.1} {:>8.1} {:>8.1}",
            case.name,
            pair(f),
            pair(w),
            pair(n),
            pair(r),
            f.p50 / n.p50,
            w.p50 / n.p50,
            r.p50 / n.p50
        );
    }
    println!("\np99 of the best and the worst round, µs");
    println!("{:<16} {:>17} {:>17}", "policy", "wasm fresh", "wasm reuse");
    for (name, (f_low, f_high), (w_low, w_high)) in spreads {
        println!("{name:<16} {:>17} {:>17}", format!("{f_low:.2}–{f_high:.2}"), format!("{w_low:.2}–{w_high:.2}"));
    }
    hot_swap_under_load(&out_dir);
}

/// Time from a new file landing in the policy directory to the new version
/// serving, compile included (no artifact cache), while two threads evaluate,
/// on the production path: a Winch build serves first while Cranelift
/// compiles in the background.
fn hot_swap_under_load(out_dir: &Path) {
    const SWAPS: usize = 20;
    let bytes = std::fs::read(out_dir.join("queue-depth.wasm")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(PolicyEngine::new(SandboxOptions::default(), None).unwrap());
    let baseline = Arc::new(PolicyEngine::new(SandboxOptions { compiler: Compiler::Winch, ..Default::default() }, None).unwrap());
    let settings = [("qd".to_string(), r#"{"target_per_worker":5}"#.to_string())].into();
    let registry = Arc::new(Registry::new(engine, dir.path(), settings).with_baseline(baseline));
    registry.start_tiering();
    let _watcher = Watcher::start(registry.clone()).unwrap();
    // A per-run nonce in a custom section: every version is new to the engine.
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let variant = |i: usize| {
        let mut b = bytes.clone();
        let payload = format!("\x05swapv{nonce}-{i}");
        b.push(0);
        b.push(payload.len() as u8);
        b.extend_from_slice(payload.as_bytes());
        b
    };
    let land = |i: usize| {
        let tmp = dir.path().join(".qd.tmp");
        std::fs::write(&tmp, variant(i)).unwrap();
        std::fs::rename(&tmp, dir.path().join("qd.wasm")).unwrap();
        let landed = Instant::now();
        let want = scalewise::policy::digest(&variant(i));
        while registry.get("qd").is_none_or(|p| p.digest != want) {
            assert!(landed.elapsed() < Duration::from_secs(30), "version {i} never served");
            std::thread::sleep(Duration::from_micros(200));
        }
        landed.elapsed()
    };
    land(0);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (registry, stop, calls) = (registry.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let input = strategy_input("");
                while !stop.load(Ordering::Relaxed) {
                    registry.evaluate("qd", &input).expect("no failed evaluation");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = (1..=SWAPS).map(land).collect();
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    latencies.sort();
    println!(
        "\nhot swap under load ({SWAPS} swaps, compile included, {} evaluations from 2 threads meanwhile): p50 {:.0} ms, max {:.0} ms",
        calls.load(Ordering::Relaxed),
        latencies[SWAPS / 2].as_secs_f64() * 1e3,
        latencies[SWAPS - 1].as_secs_f64() * 1e3
    );
}
