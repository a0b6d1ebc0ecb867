//! The journal under a policy whose state is large and always new: the
//! file stays within its retention, a `kill -9` (compaction runs all the
//! time here) loses nothing inside the window, and `scalewise journal`
//! reads all of it back.
//!
//! CI runs it for 20 s with a 16 MiB journal. The acceptance run of issue
//! 18 (10 minutes, 256 MiB) is the same test:
//! `SCALEWISE_SOAK_SECS=600 SCALEWISE_SOAK_MAX_BYTES=268435456 cargo test -p scalewise-e2e --test journal`.

use std::process::Command;
use std::time::{Duration, Instant};

use scalewise_e2e::host::{Host, SLEEPER, free_port};
use scalewise_e2e::{guest, install, scalewise_bin};
use serde_json::Value;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn a_new_megabyte_state_every_200ms_stays_within_retention_and_exports_whole() {
    let secs = env_u64("SCALEWISE_SOAK_SECS", 20);
    let max_bytes = env_u64("SCALEWISE_SOAK_MAX_BYTES", 16 << 20);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies.d")).unwrap();
    // The hostile guest, asked for a new ~1 MiB state (the cap) every call.
    install(&guest("hostile"), &dir.path().join("policies.d"), "big.wasm");
    let config = dir.path().join("scalewise.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ntoken = \"t\"\n[policies]\ndir = \"policies.d\"\ncache_dir = \"cache\"\ndeadline_ms = 2000\n\
             [policies.settings.big]\nstate_bytes = 1040000\n\
             [journal]\npath = \"journal.redb\"\nmax_bytes = {max_bytes}\n\
             [[pools]]\nid = \"big\"\nmin = 1\nmax = 3\ninterval_ms = 200\nstrategies = [{{ policy = \"big\" }}]\n\
             provider = {{ kind = \"local\", command = {SLEEPER} }}\n\
             metrics = [{{ name = \"queue_depth\", source = \"push\" }}]\n"
        ),
    )
    .unwrap();
    let journal = dir.path().join("journal.redb");
    let mut host = Host::start(&config, free_port());
    let started = Instant::now();
    let (mut largest_file, mut largest_rss, mut kills) = (0u64, 0u64, 0);
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(250));
        largest_file = largest_file.max(std::fs::metadata(&journal).map_or(0, |m| m.len()));
        largest_rss = largest_rss.max(host.rss_bytes());
        // Two kills, a third and two thirds of the way through.
        if kills < 2 && started.elapsed() > Duration::from_secs(secs * (kills + 1) / 3) {
            host.kill9();
            host.restart();
            kills += 1;
        }
    }
    let stats = host.get("/journal");
    let last_seen = host.get("/pools/big/decisions?limit=1")[0]["seq"].as_u64().unwrap();
    assert_eq!(host.terminate().code(), Some(0));
    largest_file = largest_file.max(std::fs::metadata(&journal).unwrap().len());
    eprintln!("{secs} s, {last_seen} decisions, largest journal {} MiB of {} MiB, largest RSS {} MiB; {stats}", largest_file >> 20, max_bytes >> 20, largest_rss >> 20);
    assert!(largest_file < max_bytes, "the journal reached {largest_file} bytes, over {max_bytes}");
    assert!(largest_rss < 200 << 20, "the host reached {} MiB resident", largest_rss >> 20);
    let pool = &stats["pools"][0];
    assert_eq!(pool["pool"], "big");
    assert!(pool["oldest_seq"].as_u64().unwrap() > 1, "retention dropped the oldest decisions: {stats}");

    // Offline: the export reads every decision inside the window, in order.
    let out = Command::new(scalewise_bin()).args(["journal", "--journal"]).arg(&journal).args(["export", "--pool", "big"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decisions: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<u64> = decisions.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    let first = seqs[0];
    assert!(first > 1, "old decisions were dropped");
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>(), "no gap inside the window");
    assert!(*seqs.last().unwrap() >= last_seen, "the newest decision is there");
    assert!(decisions.iter().all(|d| d["votes"][0]["proposal"]["reason"] == "hostile: behaving"), "{:?}", decisions[0]["votes"]);
    let out = Command::new(scalewise_bin()).args(["journal", "--journal"]).arg(&journal).arg("stats").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("big"), "{text}");
}

#[test]
fn journal_commands_read_through_a_running_host() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies.d")).unwrap();
    std::fs::write(dir.path().join("policies.d/one.rhai"), r#"fn strategy(input) { #{ desired: 1, reason: "one" } }"#).unwrap();
    let port = free_port();
    let config = dir.path().join("scalewise.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policies]\ndir = \"policies.d\"\n[journal]\npath = \"journal.redb\"\n\
             [[pools]]\nid = \"p\"\nmin = 1\nmax = 2\ninterval_ms = 100\nstrategies = [{{ policy = \"one\" }}]\n\
             provider = {{ kind = \"local\", command = {SLEEPER} }}\nmetrics = [{{ name = \"x\", source = \"push\" }}]\n"
        ),
    )
    .unwrap();
    let host = Host::start(&config, port);
    host.wait_for("a few decisions", Duration::from_secs(20), |h| (h.get("/pools/p/decisions?limit=5").as_array()?.len() == 5).then_some(()));
    // The host holds the file: the command finds it out and asks the API.
    let run = |args: &[&str]| {
        let out = Command::new(scalewise_bin()).arg("journal").arg("--config").arg(&config).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (stats, note) = run(&["stats", "--json"]);
    assert!(note.contains("reading through its API"), "{note}");
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["pools"][0]["pool"], "p");
    assert_eq!(stats["max_bytes"], 1u64 << 30);
    // Tail: the 3 newest, then 3 new ones as they come, then stop.
    let (tail, _) = run(&["tail", "-n", "3", "--max", "3", "--interval-ms", "100", "--json"]);
    let seqs: Vec<u64> = tail.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs.len(), 6, "{tail}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in order, none missed: {seqs:?}");
    let (export, _) = run(&["export", "--since", "1h"]);
    assert!(export.lines().count() >= 6, "{export}");
    // A bad time is a clear error.
    let out = Command::new(scalewise_bin()).args(["journal", "--config"]).arg(&config).args(["export", "--since", "yesterday"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`yesterday` is not a time"));
}
