//! Hot swap under load: several threads evaluate continuously while the
//! policy file is replaced 100 times, through the real directory watcher and
//! the production compile path (a Winch build serves first, Cranelift's
//! replaces it in the background).
//! No evaluation may fail, every answer must come from a version that was
//! live, and no thread may ever see an older version after a newer one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scalewise::policy::watch::Watcher;
use scalewise::policy::{Compiler, PolicyEngine, Registry, SandboxOptions, digest};
use scalewise_e2e::{engine, guest, install_bytes, newcomer, with_custom_section};
use scalewise_sdk::{MetricWindow, Pool, Sample, StrategyInput};

const SWAPS: usize = 100;
const THREADS: usize = 3;

#[test]
fn a_policy_replaced_100_times_under_load_never_fails_an_evaluation() {
    // Two genuinely different strategies, alternated; each variant gets its
    // own digest so every swap is a real load, compile included.
    let families = [std::fs::read(guest("hostile")).unwrap(), std::fs::read(newcomer()).unwrap()];
    let variants: Vec<Vec<u8>> = (0..=SWAPS).map(|i| with_custom_section(&families[i % 2], &format!("v{i}"))).collect();
    let index_of: HashMap<String, usize> = variants.iter().enumerate().map(|(i, v)| (digest(v), i)).collect();

    let dir = tempfile::tempdir().unwrap();
    let settings = HashMap::from([("swap".to_string(), r#"{"target_per_worker": 5}"#.to_string())]);
    let baseline = Arc::new(PolicyEngine::new(SandboxOptions { compiler: Compiler::Winch, ..Default::default() }, None).unwrap());
    let registry = Arc::new(Registry::new(engine(SandboxOptions::default()), dir.path(), settings).with_baseline(baseline));
    registry.start_tiering();
    let _watcher = Watcher::start(registry.clone()).unwrap();

    let wait_for = |i: usize| {
        let started = Instant::now();
        loop {
            if registry.get("swap").is_some_and(|p| index_of.get(&p.digest) == Some(&i)) {
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "version {i} never served");
            std::thread::sleep(Duration::from_micros(500));
        }
    };
    install_bytes(&variants[0], dir.path(), "swap.wasm");
    wait_for(0);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (registry, stop, failures, index_of) = (registry.clone(), stop.clone(), failures.clone(), index_of.clone());
            std::thread::spawn(move || {
                let input = StrategyInput {
                    pool: Pool { id: "behave".into(), running: 3, booting: 0, min: 1, max: 50 },
                    metrics: vec![MetricWindow::new("rps", vec![Sample { at: 0, value: 42.0 }])],
                    now: 0,
                    ..Default::default()
                };
                let (mut calls, mut newest) = (0u64, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    calls += 1;
                    match registry.evaluate("swap", &input) {
                        Ok(e) => {
                            let out = &e.output;
                            let i = index_of[&e.digest];
                            let expected = if i % 2 == 0 { "hostile: behaving" } else { "42 rps / 5 per worker" };
                            if out.proposal.reason != expected || e.fallback.is_some() {
                                failures.lock().unwrap().push(format!("v{i} answered {:?} (fallback: {:?})", out.proposal.reason, e.fallback));
                            }
                            if i < newest {
                                failures.lock().unwrap().push(format!("saw v{i} after v{newest}"));
                            }
                            newest = newest.max(i);
                        }
                        Err(e) => failures.lock().unwrap().push(e.to_string()),
                    }
                }
                calls
            })
        })
        .collect();

    let mut latencies = Vec::new();
    for (i, variant) in variants.iter().enumerate().skip(1) {
        install_bytes(variant, dir.path(), "swap.wasm");
        latencies.push(wait_for(i));
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();

    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{} failed evaluations, first: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    latencies.sort();
    println!(
        "{SWAPS} swaps under {calls} evaluations from {THREADS} threads: swap-to-serving p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    assert!(calls > SWAPS as u64 * THREADS as u64, "the load threads barely ran ({calls} calls)");
    assert_eq!(registry.status_of("swap").unwrap().serving.unwrap().digest, digest(&variants[SWAPS]));

    // The last version ends up on its Cranelift build, same generation.
    let generation = registry.get("swap").unwrap().generation;
    let started = Instant::now();
    while registry.get("swap").unwrap().compiled_by != "cranelift" {
        assert!(started.elapsed() < Duration::from_secs(30), "the Cranelift build never replaced the Winch one");
        std::thread::sleep(Duration::from_millis(10));
    }
    let serving = registry.status_of("swap").unwrap().serving.unwrap();
    assert_eq!((serving.generation, serving.compiled_by), (generation, "cranelift"));
}
