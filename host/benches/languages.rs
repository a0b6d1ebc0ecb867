//! The same strategy in Rust, Python and JavaScript: what each costs per
//! call, and how long a changed version takes from landing in the policy
//! directory to serving.
//!
//! Run with `cargo bench -p scalewise --bench languages` (needs
//! componentize-py and componentize-js; `bash .ci/run` installs both).
//! - The strategy is `scalewise policy new`'s target-per-worker template in
//!   each language, built with `scalewise policy build`.
//! - Per call: `evaluate` on one input through the host's own call path,
//!   with a fresh instance per call and with a reused (warm) instance;
//!   p50 and p99 in µs.
//! - Landing to serving: a registry set up as `scalewise serve` sets it up
//!   (directory watcher, 500 ms settle, Winch first while Cranelift builds
//!   behind it, a compile cache by digest) gets a changed version by an
//!   atomic rename; timed until the registry serves its digest. Uncached: a
//!   version never compiled; cached: one whose Cranelift build is in the
//!   cache already (a rollback, or a second host sharing the cache).
//! - The floor: the same rule written against the bare bindings, with no
//!   kit (no settings parsing, no conversion, no state), reused p50/p99:
//!   what the language's toolchain costs per call before the kit does
//!   anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scalewise::command::{Language, build_policies, new_project};
use scalewise::policy::cache::ArtifactCache;
use scalewise::policy::watch::Watcher;
use scalewise::policy::{AnyInput, Compiler, InstanceMode, Policy, PolicyEngine, PolicySource, PolicyStatus, Registry, SandboxOptions, component, digest};
use scalewise::timing::measure;

const SETTINGS: &str = r#"{"target_per_worker": 10}"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The component with a custom section appended: the same code under a
/// new digest, as a rebuilt version would be.
fn variant(bytes: &[u8], marker: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut payload = vec![marker.len() as u8];
    payload.extend_from_slice(marker.as_bytes());
    out.push(0);
    let mut n = payload.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&payload);
    out
}

fn land(bytes: &[u8], dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn per_call(path: &Path, mode: InstanceMode, iterations: u32) -> (f64, f64) {
    let engine = Arc::new(PolicyEngine::new(SandboxOptions { instance_mode: mode, ..SandboxOptions::default() }, None).unwrap());
    let bytes = std::fs::read(path).unwrap();
    let src = PolicySource { id: "bench", path, bytes: &bytes, settings: SETTINGS, generation: 1 };
    let policy = Policy::load(&engine, src, Arc::new(PolicyStatus::default())).unwrap();
    let input = AnyInput::sample(policy.role());
    input.evaluate(&policy).expect("the strategy answers the sample input");
    let p = measure(iterations, || {
        let _ = input.evaluate(&policy);
    });
    (p.p50, p.p99)
}

/// Seconds from landing to serving, for a version that is `cached` or not.
fn landing(component: &[u8], round: usize, cached: bool, cache_dir: &Path) -> (f64, &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::new(cache_dir).unwrap();
    let engine = Arc::new(PolicyEngine::new(SandboxOptions { instance_mode: InstanceMode::Auto { max_calls: 10_000 }, ..SandboxOptions::default() }, Some(cache)).unwrap());
    let baseline = Arc::new(PolicyEngine::new(SandboxOptions { compiler: Compiler::Winch, instance_mode: InstanceMode::Auto { max_calls: 10_000 }, ..SandboxOptions::default() }, None).unwrap());
    let settings = [("swap".to_string(), SETTINGS.to_string())].into_iter().collect();
    let registry = Arc::new(Registry::new(engine.clone(), dir.path(), settings).with_baseline(baseline).with_file_limits(Default::default()));
    registry.start_tiering();
    let _watcher = Watcher::start(registry.clone()).unwrap();
    let bytes = variant(component, &format!("round-{round}-{}", if cached { "cached" } else { "fresh" }));
    if cached {
        component::compile(&engine, &bytes).unwrap();
    }
    let want = digest(&bytes);
    let started = Instant::now();
    land(&bytes, dir.path(), "swap.wasm");
    loop {
        if let Some(p) = registry.get("swap").filter(|p| p.digest == want) {
            return (started.elapsed().as_secs_f64(), p.compiled_by);
        }
        assert!(started.elapsed() < Duration::from_secs(120), "never served");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The rule against the bare bindings of each toolchain, without the kit.
const BARE_PY: &str = r#"import math
from wit_world import exports
from wit_world.imports import types

class StrategyApi(exports.StrategyApi):
    def validate_config(self, settings):
        pass

    def evaluate(self, input):
        window = next((w for w in input.metrics if w.name == "queue_depth"), None)
        value = window.values[-1] if window and window.values else 0.0
        desired = float(min(max(math.ceil(value / 10.0), input.pool.min), input.pool.max))
        return types.StrategyOutput(types.Proposal(desired, 1.0, f"queue_depth {value:g} / 10 per worker"), [], None)
"#;

const BARE_JS: &str = r#"export const strategyApi = {
  validateConfig(settings) {},
  evaluate(input) {
    const w = input.metrics.find((m) => m.name === 'queue_depth');
    const value = w && w.values.length ? w.values[w.values.length - 1] : 0;
    const desired = Math.min(Math.max(Math.ceil(value / 10), input.pool.min), input.pool.max);
    return { proposal: { desired, confidence: 1, reason: `queue_depth ${value} / 10 per worker` }, gauges: [], state: undefined };
  },
};
"#;

fn main() {
    let work = root().join("target/bench-languages");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let languages = [("rust", Language::Rust), ("python", Language::Python), ("js", Language::JavaScript)];
    let mut projects = Vec::new();
    for (name, language) in languages {
        let dir = work.join(format!("{name}-strategy"));
        new_project(&format!("{name}-strategy"), language, "strategy", &dir, None).unwrap();
        projects.push(dir);
    }
    for (name, file, text, manifest) in [
        ("python-bare", "app.py", BARE_PY, ("pyproject.toml", "[project]\nname = \"python-bare\"\n[tool.scalewise]\nrole = \"strategy\"\n")),
        ("js-bare", "app.js", BARE_JS, ("package.json", r#"{"name": "js-bare", "type": "module", "main": "app.js", "scalewise": {"role": "strategy"}}"#)),
    ] {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
        std::fs::write(dir.join(manifest.0), manifest.1).unwrap();
        projects.push(dir);
    }
    let started = Instant::now();
    let built = build_policies(&projects, &work.join("out")).unwrap();
    println!("built the three (and the two bare floors) in {:.0} s", started.elapsed().as_secs_f64());
    println!("{:<11} {:>9} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}", "language", "size MB", "fresh p50", "fresh p99", "reused p50", "reused p99", "land→serve", "cached");
    println!("{:<11} {:>9} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}", "", "", "µs", "µs", "µs", "µs", "uncached s", "s");
    for ((name, _), path) in languages.iter().zip(&built) {
        let bytes = std::fs::read(path).unwrap();
        let fresh_iterations = if *name == "rust" { 5000 } else { 300 };
        let (fresh50, fresh99) = per_call(path, InstanceMode::Fresh, fresh_iterations);
        let (reused50, reused99) = per_call(path, InstanceMode::Warm { max_calls: u64::MAX }, 5000);
        let cache = tempfile::tempdir().unwrap();
        let (uncached, by_uncached) = landing(&bytes, 1, false, cache.path());
        let (cached, by_cached) = landing(&bytes, 2, true, cache.path());
        println!(
            "{name:<11} {:>9.1} {fresh50:>12.1} {fresh99:>12.1} {reused50:>12.1} {reused99:>12.1} {:>10} {:>10}",
            bytes.len() as f64 / 1e6,
            format!("{uncached:.2} ({by_uncached})"),
            format!("{cached:.2} ({by_cached})"),
        );
    }
    for (name, path) in ["python, no kit", "js, no kit"].iter().zip(&built[3..]) {
        let (reused50, reused99) = per_call(path, InstanceMode::Warm { max_calls: u64::MAX }, 5000);
        println!("{name:<15} {:>5} {:>12} {:>12} {reused50:>12.1} {reused99:>12.1}", "", "", "");
    }
}
