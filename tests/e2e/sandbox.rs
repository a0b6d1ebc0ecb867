//! Every hostile policy the sandbox must survive, each asserting the outcome:
//! the host keeps running, the error is clear and visible in the status, the
//! last good version keeps serving, and no faulty answer comes out (which is
//! what keeps it from ever reaching a provider).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scalewise::policy::registry::RegistryError;
use scalewise::policy::{Compiler, PolicyError, Registry, SandboxOptions};
use scalewise_e2e::{engine, guest, install, install_bytes, with_custom_section};
use scalewise_sdk::{MetricWindow, Pool, Sample, StrategyInput};

fn input(pool_id: &str) -> StrategyInput {
    StrategyInput {
        pool: Pool { id: pool_id.into(), running: 3, booting: 0, min: 1, max: 20 },
        metrics: vec![MetricWindow::new("rps", vec![Sample { at: 0, value: 40.0 }])],
        now: 1000,
        ..Default::default()
    }
}

fn registry(dir: &Path, settings: &[(&str, &str)]) -> Arc<Registry> {
    registry_compiled_by(dir, settings, Compiler::Cranelift)
}

fn registry_compiled_by(dir: &Path, settings: &[(&str, &str)], compiler: Compiler) -> Arc<Registry> {
    let settings: HashMap<String, String> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // A roomy deadline: these tests are about what happens, not how fast, and
    // building a 10 MB string legitimately takes a while on a busy machine.
    let options = SandboxOptions { deadline: Duration::from_millis(100), compiler, ..SandboxOptions::default() };
    Arc::new(Registry::new(engine(options), dir, settings))
}

fn eval(registry: &Registry, id: &str, pool: &str) -> Result<String, RegistryError> {
    let i = input(pool);
    registry.evaluate(id, &i).map(|e| e.output.proposal.reason)
}

fn policy_err(r: Result<String, RegistryError>) -> PolicyError {
    match r {
        Err(RegistryError::Policy(e)) => e,
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn hostile_calls_are_contained_and_reported() {
    contain_hostile_calls(Compiler::Cranelift);
}

/// New versions serve from a Winch build first: it must hold the same line.
#[test]
fn hostile_calls_are_contained_when_compiled_by_winch() {
    contain_hostile_calls(Compiler::Winch);
}

fn contain_hostile_calls(compiler: Compiler) {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_compiled_by(dir.path(), &[], compiler);
    install(&guest("hostile"), dir.path(), "hostile.wasm");
    let report = registry.rescan();
    assert_eq!(report.loaded, ["hostile"], "{report:?}");
    assert_eq!(registry.get("hostile").unwrap().compiled_by, compiler.as_str());

    type Check = fn(&PolicyError) -> bool;
    let cases: [(&str, Check); 11] = [
        ("loop", |e| matches!(e, PolicyError::Timeout(_))),
        ("alloc", |e| matches!(e, PolicyError::MemoryCap(_))),
        ("recurse", |e| matches!(e, PolicyError::Trap(m) if m.contains("call stack exhausted") || m.contains("stack overflow"))),
        ("panic", |e| matches!(e, PolicyError::Trap(m) if m.contains("hostile policy panicked on purpose"))),
        ("big-reason", |e| matches!(e, PolicyError::InvalidOutput(m) if m.contains("reason is 10485760 bytes"))),
        ("nan", |e| matches!(e, PolicyError::InvalidOutput(m) if m.contains("NaN"))),
        ("negative", |e| matches!(e, PolicyError::InvalidOutput(m) if m.contains("negative"))),
        ("above-max", |e| matches!(e, PolicyError::InvalidOutput(m) if m.contains("outside the pool's bounds [1, 20]"))),
        ("read-file", |e| matches!(e, PolicyError::Declined(m) if m.starts_with("file denied"))),
        ("env", |e| matches!(e, PolicyError::Declined(m) if m == "env denied: no variables")),
        ("socket", |e| matches!(e, PolicyError::Declined(m) if m.starts_with("socket denied"))),
    ];
    for (mode, check) in cases {
        let started = Instant::now();
        let err = policy_err(eval(&registry, "hostile", mode));
        assert!(check(&err), "{mode}: unexpected outcome: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{mode} took {:?}", started.elapsed());
        // The host is unharmed: the next call on the same policy is fine.
        assert_eq!(eval(&registry, "hostile", "behave").unwrap(), "hostile: behaving", "after {mode}");
    }

    let status = registry.status_of("hostile").unwrap();
    assert_eq!(status.timeouts, 1);
    assert_eq!(status.memory_cap, 1);
    assert_eq!(status.traps, 2);
    assert_eq!(status.invalid_outputs, 4);
    assert_eq!((status.errors, status.declined), (3, 0), "the guest's own errors are errors, not a considered no-opinion");
    assert!(status.last_error.unwrap().message.contains("outside the pool's bounds"));
    assert!(status.latency_p99_us.is_some());
}

#[test]
fn the_guest_sees_a_frozen_clock_and_its_logs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path(), &[]);
    install(&guest("hostile"), dir.path(), "hostile.wasm");
    registry.rescan();
    assert_eq!(eval(&registry, "hostile", "clock").unwrap(), "clock reads 0s");
    // 10,000 log calls: the host keeps 64 and the call still finishes in time.
    assert_eq!(eval(&registry, "hostile", "chatty").unwrap(), "chatty");
}

#[test]
fn bad_files_leave_the_last_good_version_serving() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path(), &[("looper", r#"{"always": "loop"}"#)]);
    let good = std::fs::read(guest("hostile")).unwrap();
    install_bytes(&good, dir.path(), "p.wasm");
    registry.rescan();
    let serving = registry.get("p").unwrap().generation;

    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not wasm", b"#!/bin/sh\necho hello\n".to_vec(), "not a WebAssembly component"),
        ("truncated", good[..good.len() / 2].to_vec(), "does not compile"),
        ("core module", b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        ("wrong world", std::fs::read(guest("wrong-world")).unwrap(), "exports none of the scalewise worlds"),
        ("wrong version", std::fs::read(guest("wrong-version")).unwrap(), "built against scalewise:policy@1.0.0"),
    ];
    for (what, bytes, expected) in bad {
        install_bytes(&bytes, dir.path(), "p.wasm");
        let report = registry.rescan();
        assert_eq!(report.failed.len(), 1, "{what}: {report:?}");
        let status = registry.status_of("p").unwrap();
        let load_error = status.last_load_error.expect("load error recorded").message;
        assert!(load_error.contains(expected), "{what}: {load_error}");
        assert_eq!(status.serving.unwrap().generation, serving, "{what}: serving version changed");
        assert_eq!(eval(&registry, "p", "behave").unwrap(), "hostile: behaving", "{what}");
    }

    // A component whose smoke call loops is never taken into service.
    install(&guest("hostile"), dir.path(), "looper.wasm");
    let report = registry.rescan();
    assert!(report.failed.iter().any(|(id, e)| id == "looper" && e.contains("smoke call") && e.contains("deadline")), "{report:?}");
    assert!(registry.get("looper").is_none());

    // Good again: the new version replaces the old one.
    install_bytes(&with_custom_section(&good, "v2"), dir.path(), "p.wasm");
    registry.rescan();
    let now = registry.status_of("p").unwrap();
    assert!(now.serving.unwrap().generation > serving);
    assert!(now.last_load_error.is_none());

    // Deleting the file unloads the policy.
    std::fs::remove_file(dir.path().join("p.wasm")).unwrap();
    assert_eq!(registry.rescan().unloaded, ["p"]);
    assert!(matches!(eval(&registry, "p", "behave"), Err(RegistryError::NotLoaded(_))));
}

#[test]
fn rhai_scripts_are_sandboxed_too() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path(), &[]);
    std::fs::write(dir.path().join("forever.rhai"), "fn strategy(input) { loop { } }").unwrap();
    std::fs::write(
        dir.path().join("sometimes.rhai"),
        r#"fn strategy(input) {
             if input.pool.id == "loop" { loop { } }
             if input.pool.id == "huge" { let s = "x"; loop { s += s; } }
             #{ desired: input.pool.running, reason: "rhai: behaving" }
           }"#,
    )
    .unwrap();
    let report = registry.rescan();
    assert!(report.failed.iter().any(|(id, e)| id == "forever" && e.contains("deadline")), "{report:?}");
    assert_eq!(report.loaded, ["sometimes"]);
    let started = Instant::now();
    assert!(matches!(policy_err(eval(&registry, "sometimes", "loop")), PolicyError::Timeout(_)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(policy_err(eval(&registry, "sometimes", "huge")), PolicyError::Trap(m) if m.contains("too large") || m.contains("Length")));
    assert_eq!(eval(&registry, "sometimes", "behave").unwrap(), "rhai: behaving");
    assert_eq!(registry.status_of("sometimes").unwrap().timeouts, 1);
}

#[test]
fn a_faulting_new_version_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path(), &[]);
    std::fs::write(dir.path().join("p.rhai"), r#"fn strategy(input) { #{ desired: 2, reason: "old and steady" } }"#).unwrap();
    registry.rescan();
    let old = registry.get("p").unwrap().generation;
    // The new version passes its smoke call but panics on some real inputs.
    std::fs::remove_file(dir.path().join("p.rhai")).unwrap();
    install(&guest("hostile"), dir.path(), "p.wasm");
    let report = registry.rescan();
    assert_eq!(report.loaded, ["p"], "{report:?}");

    let i = input("panic");
    let evaluation = registry.evaluate("p", &i).unwrap();
    assert_eq!(evaluation.generation, old);
    assert!(evaluation.fallback.unwrap().contains("panicked on purpose"));
    assert_eq!(evaluation.output.proposal.reason, "old and steady");
    assert_eq!(registry.status_of("p").unwrap().fallbacks, 1);
    assert_eq!(eval(&registry, "p", "behave").unwrap(), "hostile: behaving");
}

/// A policy instance (a pool's own settings for a policy) is the policy's
/// file under another id: loaded with it, swapped with it, gone with it.
#[test]
fn policy_instances_follow_their_file_with_their_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let settings: HashMap<String, String> = [("p", r#"{"word":"plain"}"#), ("p@web", r#"{"word":"web"}"#)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let registry = Registry::new(engine(SandboxOptions::default()), dir.path(), settings).with_instances([("p@web".to_string(), "p".to_string())].into());
    let script = |version: &str| format!(r#"fn strategy(input) {{ #{{ desired: 1, reason: "{version} " + input.settings.word }} }}"#);
    std::fs::write(dir.path().join("p.rhai"), script("v1")).unwrap();
    assert_eq!(registry.rescan().loaded, ["p", "p@web"]);
    assert_eq!((eval(&registry, "p", "x").unwrap(), eval(&registry, "p@web", "x").unwrap()), ("v1 plain".into(), "v1 web".into()));
    std::fs::write(dir.path().join("p.rhai"), script("v2")).unwrap();
    registry.rescan();
    assert_eq!(eval(&registry, "p@web", "x").unwrap(), "v2 web");
    std::fs::remove_file(dir.path().join("p.rhai")).unwrap();
    assert_eq!(registry.rescan().unloaded, ["p", "p@web"]);
}

/// A consensus may only pick among the votes cast (or hold): one that
/// invents a capacity no expert proposed is a broken policy. Both experts
/// vote 2 and the consensus answers 5; the pool must hold at its current 3,
/// and the decision must say why.
#[test]
fn a_consensus_outside_the_votes_cast_is_refused_and_the_pool_holds() {
    use scalewise::decide::budget::CostSpec;
    use scalewise::decide::guardrails::Guardrails;
    use scalewise::decide::memory::PoolMemory;
    use scalewise::decide::pipeline::{self, ExpertSpec, PoolPlan, TickInput};
    use scalewise::decide::record::Mode;

    let dir = tempfile::tempdir().unwrap();
    for expert in ["a", "b"] {
        std::fs::write(dir.path().join(format!("{expert}.rhai")), r#"fn strategy(input) { #{ desired: 2, reason: "two" } }"#).unwrap();
    }
    // Behaves on the load's smoke call, invents on the pool's input.
    std::fs::write(
        dir.path().join("inventor.rhai"),
        r#"fn consensus(input) {
             if input.pool.id == "web" { #{ desired: 5, explanation: "five, from nowhere" } }
             else { #{ desired: input.pool.running, explanation: "holding" } }
           }"#,
    )
    .unwrap();
    // Invents always: refused at load, by the same check on the smoke call.
    std::fs::write(dir.path().join("always.rhai"), r#"fn consensus(input) { #{ desired: 7, explanation: "seven" } }"#).unwrap();
    // A hold at the current capacity is always an answer.
    std::fs::write(dir.path().join("holder.rhai"), r#"fn consensus(input) { #{ desired: input.pool.running, explanation: "holding" } }"#).unwrap();
    let registry = registry(dir.path(), &[]);
    let report = registry.rescan();
    assert_eq!(report.loaded, ["a", "b", "holder", "inventor"], "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, "always");
    assert!(report.failed[0].1.contains("desired capacity 7 is outside the proposals cast"), "{report:?}");

    let plan = |consensus: &str| PoolPlan {
        id: "web".into(),
        min: 1,
        max: 20,
        strategies: vec![ExpertSpec { policy: "a".into(), weight: 1.0 }, ExpertSpec { policy: "b".into(), weight: 1.0 }],
        consensus: Some(consensus.into()),
        cost_rules: vec![],
        cost: CostSpec::default(),
        guardrails: Guardrails { tolerance: 0.0, scale_down_stabilization_secs: 0, scale_down_cooldown_secs: 0, ..Guardrails::default() },
        limits: vec![],
        instances: Default::default(),
        candidate: None,
    };
    let tick = |plan| TickInput { plan, now: 1000, mode: Mode::Live, running: 3, booting: 0, metrics: vec![], readings: vec![], recent: vec![], headroom: None, advice: None };

    let inventor = plan("inventor");
    let record = pipeline::decide(registry.as_ref(), tick(&inventor), &mut PoolMemory::default());
    assert_eq!(record.desired, 3, "held at the current capacity: {record:?}");
    assert_eq!(record.consensus.desired, None);
    let why = &record.consensus.explanation;
    assert!(why.contains("consensus failed, holding") && why.contains("5") && why.contains("proposals cast [2, 2]"), "{why}");
    assert!(registry.status_of("inventor").unwrap().last_error.is_some(), "the status shows the broken answer");

    let holder = plan("holder");
    let held = pipeline::decide(registry.as_ref(), tick(&holder), &mut PoolMemory::default());
    assert_eq!((held.consensus.desired, held.desired), (Some(3.0), 3), "a hold is always allowed: {:?}", held.consensus);
}
