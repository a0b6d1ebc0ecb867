//! The host's fixed costs: cold start with a warm compile cache, and the
//! memory each loaded policy takes.
//!
//! Run with `cargo bench -p scalewise --bench host_start`.
//! - Cold start: `scalewise serve` with the six built-in policies in its
//!   policy directory and the compile cache already filled by a first start;
//!   timed from spawning the process to its `/healthz` answering (the
//!   policy directory is scanned, and every policy loaded, before the API
//!   listens). Five starts.
//! - Memory: resident memory of this process before and after loading 60
//!   policies (ten copies of each built-in under different ids, from the
//!   warm cache) into one registry, divided by 60.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scalewise::policy::cache::ArtifactCache;
use scalewise::policy::{PolicyEngine, Registry, SandboxOptions};

/// Each built-in with its settings, as the config's TOML and as JSON.
const BUILTINS: &[(&str, &str, &str)] = &[
    ("target-tracking", r#"metrics = [{ name = "cpu", target = 0.6 }]"#, r#"{"metrics":[{"name":"cpu","target":0.6}]}"#),
    (
        "step-scaling",
        r#"metric = "cpu"
scale_out = { threshold = 0.7, steps = [{ lower = 0.0, adjustment = 1 }] }"#,
        r#"{"metric":"cpu","scale_out":{"threshold":0.7,"steps":[{"lower":0.0,"adjustment":1}]}}"#,
    ),
    ("queue-depth", "target_per_worker = 10", r#"{"target_per_worker":10}"#),
    ("weighted-vote", "", "{}"),
    ("safest", "", "{}"),
    ("budget-cap", "max_hourly = 25.0", r#"{"max_hourly":25.0}"#),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    std::fs::create_dir_all(&policies).unwrap();
    let mut settings = String::new();
    for (name, toml, _) in BUILTINS {
        let built = scalewise::command::build_policy_crate(&root().join("policies").join(name), &root().join("target/bench-policies")).unwrap();
        std::fs::copy(&built, policies.join(format!("{name}.wasm"))).unwrap();
        settings.push_str(&format!("[policies.settings.{name}]\n{toml}\n"));
    }
    let cache = dir.path().join("cache");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("scalewise.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[policies]\ndir = \"policies.d\"\ncache_dir = \"cache\"\n{settings}"),
    )
    .unwrap();

    println!("host cold start, six policies, warm compile cache (spawn → /healthz answers)");
    let mut times = Vec::new();
    for i in 0..6 {
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_scalewise"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("SCALEWISE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while !healthy(port) {
            assert!(start.elapsed() < Duration::from_secs(60), "the host did not come up");
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = start.elapsed();
        child.kill().unwrap();
        child.wait().unwrap();
        if i == 0 {
            println!("  first start (fills the cache): {:.0} ms", took.as_secs_f64() * 1e3);
        } else {
            times.push(took.as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("  warm starts: {} ms (median {:.0} ms)", times.iter().map(|t| format!("{t:.0}")).collect::<Vec<_>>().join(", "), times[times.len() / 2]);

    // Memory per loaded policy.
    let engine = Arc::new(PolicyEngine::new(SandboxOptions::default(), Some(ArtifactCache::new(&cache).unwrap())).unwrap());
    let many = dir.path().join("many.d");
    std::fs::create_dir_all(&many).unwrap();
    let mut ids = std::collections::HashMap::new();
    for copy in 0..10 {
        for (name, _, json) in BUILTINS {
            let id = format!("{name}-{copy}");
            std::fs::copy(policies.join(format!("{name}.wasm")), many.join(format!("{id}.wasm"))).unwrap();
            ids.insert(id, json.to_string());
        }
    }
    let n = ids.len();
    let registry = Registry::new(engine, &many, ids);
    let before = resident_bytes();
    let report = registry.rescan();
    assert_eq!(report.loaded.len(), n, "{:?}", report.failed);
    let after = resident_bytes();
    println!("memory per loaded policy (compiled, linked, smoke-tested; {n} loaded): {:.0} KiB resident", (after - before) as f64 / n as f64 / 1024.0);
}

