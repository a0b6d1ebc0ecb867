//! Simulator throughput: six policy sets (the reference baselines and the
//! `hybrid` preset, whose forecasting strategy carries a learnt model in
//! its state) on 50,000 steps of each long shared trace (NASA per minute,
//! Wikipedia hourly), run as `scalewise simulate` runs them, in parallel;
//! then each set alone. The sets are `examples/simulate/bench.toml`.
//!
//! Run with `cargo bench -p scalewise --bench simulate`. The traces are in
//! the repository's `data/traces/`. `SCALEWISE_BENCH_RUNS` sets the
//! number of timed runs of the six sets (default 3).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use scalewise::simulate::run::{self, Progress, RunOptions};
use scalewise::simulate::spec::SimSpec;
use scalewise::timing::cpu_seconds;

const STEPS: u64 = 50_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn main() {
    let runs: usize = std::env::var("SCALEWISE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    std::fs::create_dir_all(&policies).unwrap();
    for name in ["target-tracking", "step-scaling", "queue-depth", "safest", "budget-cap", "predictive", "hybrid"] {
        let built = scalewise::command::build_policy_crate(&root().join("policies").join(name), &root().join("target/bench-policies")).unwrap();
        std::fs::copy(built, policies.join(format!("{name}.wasm"))).unwrap();
    }
    let all = SimSpec::load(&root().join("examples/simulate/bench.toml")).unwrap();
    let options = RunOptions { policy_dir: Some(policies), cache_dir: Some(dir.path().join("cache")), max_steps: Some(STEPS), ..Default::default() };
    // Warm the compile cache, as a second `scalewise simulate` finds it.
    run::run(&all, &RunOptions { max_steps: Some(10), ..options.clone() }, &Arc::new(Progress::default())).unwrap();
    for trace in &all.traces {
        let mut spec = all.clone();
        spec.traces = vec![trace.clone()];
        bench_trace(&spec, &options, runs);
        println!();
    }
}

fn bench_trace(spec: &SimSpec, options: &RunOptions, runs: usize) {
    let name = spec.traces[0].name();
    let sets = spec.sets.len();
    println!("simulator: {sets} policy sets on {STEPS} steps of the {name} trace, in parallel (wall time includes loading the sets' policies from a warm cache)");
    println!("{:>4} {:>8} {:>10} {:>10} {:>16} {:>12}", "run", "steps", "wall s", "CPU s", "set-steps/s", "CPU µs/step");
    let mut walls = Vec::new();
    for i in 0..runs {
        let (cpu, start) = (cpu_seconds(), Instant::now());
        let results = run::run(spec, options, &Arc::new(Progress::default())).unwrap();
        let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let t = &results[0];
        assert!(t.sets.iter().all(|s| s.failed.is_none()), "{:?}", t.sets.iter().map(|s| &s.failed).collect::<Vec<_>>());
        assert_eq!(t.steps, STEPS, "the {name} trace has {STEPS} steps");
        let set_steps = (t.steps * sets as u64) as f64;
        println!("{:>4} {:>8} {:>10.2} {:>10.2} {:>16.0} {:>12.2}", i + 1, t.steps, wall, cpu, set_steps / wall, cpu * 1e6 / set_steps);
        walls.push(wall);
    }
    walls.sort_by(f64::total_cmp);
    println!("median wall: {:.2} s for {sets} sets × {STEPS} steps of {name} (goal: 3 s)", walls[walls.len() / 2]);

    println!("each set alone (one thread):");
    println!("{:<14} {:>10} {:>16} {:>12}", "set", "wall s", "steps/s", "µs/step");
    for set in spec.sets.clone() {
        let mut one = spec.clone();
        one.sets = vec![set.clone()];
        let start = Instant::now();
        let results = run::run(&one, options, &Arc::new(Progress::default())).unwrap();
        let wall = start.elapsed().as_secs_f64();
        let steps = results[0].steps as f64;
        println!("{:<14} {:>10.2} {:>16.0} {:>12.2}", set.name, wall, steps / wall, wall * 1e6 / steps);
    }
}
