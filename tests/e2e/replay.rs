//! `scalewise simulate --from-journal` on a real host's own journal: every
//! policy decision the host recorded is taken again, step by step, with
//! the same result, and a candidate set's decisions are reported beside
//! them (agreeing with what the host's live shadow recorded). The same
//! from what a real Prometheus kept of the pool.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scalewise_e2e::host::{Host, SLEEPER, free_port, queue_depth_config};
use scalewise_e2e::prometheus::{prom_query, start_prometheus};
use scalewise_e2e::scalewise_bin;
use serde_json::Value;

/// A strategy with a state: an average of the queue that moves a third of
/// the way each call, so each decision depends on every one before it.
const SMOOTH: &str = r#"fn strategy(input) {
    let q = 0.0;
    for m in input.metrics { if m.name == "queue_depth" && m.samples.len() > 0 { q = m.samples[-1].value; } }
    let avg = if input.state == () { q } else { input.state.avg + (q - input.state.avg) / 3.0 };
    let d = avg / 10.0;
    if d < input.pool.min.to_float() { d = input.pool.min.to_float(); }
    if d > input.pool.max.to_float() { d = input.pool.max.to_float(); }
    #{ desired: d, reason: `smoothed ${avg}`, state: #{ avg: avg } }
}"#;

fn config(dir: &Path) -> std::path::PathBuf {
    let pools = format!(
        r#"
[[pools]]
id = "web"
min = 1
max = 8
interval_ms = 150
strategies = [{{ policy = "queue-depth" }}, {{ policy = "smooth" }}]
consensus = "highest"
candidate = {{ strategies = [{{ policy = "smooth" }}] }}
provider = {{ kind = "local", command = {SLEEPER}, grace_secs = 1, ready_after_ms = 100 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 2 }}]
guardrails = {{ tolerance = 0.0, scale_up_cooldown_secs = 0, scale_down_cooldown_secs = 1, scale_down_stabilization_secs = 1, scale_up_limits = [], scale_down_limits = [] }}
"#
    );
    let cfg = queue_depth_config(dir, "t", &pools);
    std::fs::write(dir.join("policies.d/smooth.rhai"), SMOOTH).unwrap();
    std::fs::write(dir.join("policies.d/highest.rhai"), scalewise_e2e::host::HIGHEST).unwrap();
    cfg
}

fn replay(dir: &Path, cfg: &Path, extra: &[&str]) -> (bool, Value, String) {
    let out = dir.join("replay");
    let o = Command::new(scalewise_bin())
        .args(["simulate", "--from-journal"])
        .arg(dir.join("journal.redb"))
        .arg("--config")
        .arg(cfg)
        .args(["--pool", "web", "--json", "--out"])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let json = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.success(), json, text)
}

/// Acceptance: a host decides on a changing queue for a few seconds, with
/// scale-ups and (stabilized, cooled-down) scale-downs, an operator's
/// scale with a hold, and a pause; stopped, its journal replays to the same
/// decisions, every one, and the candidate's what-if matches its live shadow.
/// A changed policy then parts from the record at the step it should, and
/// says where.
#[test]
fn a_pools_own_journal_replays_to_its_recorded_decisions_with_a_candidate_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut host = Host::start(&cfg, free_port());
    let push = |v: f64| {
        let (s, b) = host.post("/pools/web/metrics", Some("t"), &format!(r#"{{"name":"queue_depth","value":{v}}}"#));
        assert_eq!(s, 200, "{b}");
    };
    for (i, q) in [30.0, 55.0, 70.0, 20.0, 5.0, 45.0, 80.0, 12.5, 33.3, 60.0].iter().enumerate() {
        push(*q);
        std::thread::sleep(Duration::from_millis(400));
        if i == 4 {
            // An operator's change is a decision of its own, not replayed.
            let (s, b) = host.post("/pools/web/scale", Some("t"), r#"{"capacity":4,"hold_secs":1,"reason":"test"}"#);
            assert_eq!(s, 200, "{b}");
        }
        if i == 7 {
            assert_eq!(host.post("/pools/web/pause", Some("t"), "").0, 200);
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(host.post("/pools/web/resume", Some("t"), "").0, 200);
        }
    }
    let live = host.get("/pools/web");
    let acted = live["actions"].as_u64().unwrap_or(0);
    assert!(acted >= 3, "the pool should have acted a few times: {live}");
    host.terminate();

    let (ok, r, text) = replay(dir.path(), &cfg, &[]);
    assert!(ok, "{text}");
    let s = &r["summary"];
    println!("replay: {}", serde_json::to_string(s).unwrap());
    let replayed = s["replayed"].as_u64().unwrap();
    assert!(replayed >= 20, "{text}");
    assert_eq!(s["reproduced"], replayed, "every recorded decision taken again the same: {text}");
    assert_eq!(s["skipped"], 0, "{text}");
    assert!(s["operator"].as_u64().unwrap() >= 1, "the manual scale is counted: {text}");
    let c = &s["candidate"];
    assert_eq!(c["steps"], replayed, "{text}");
    assert!(c["differed"].as_u64().unwrap() > 0, "the candidate (smooth alone) parts from the serving set somewhere: {text}");
    assert_eq!(c["shadow_recorded"], replayed, "{text}");
    assert_eq!(c["shadow_agreed"], c["shadow_recorded"], "the what-if is what the live shadow decided: {text}");
    assert_eq!(r["candidate_set"], "strategies [smooth]");
    let csv = std::fs::read_to_string(dir.path().join("replay/steps.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, replayed + 1, "one line a step");

    // Another candidate, from a config of its own.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, std::fs::read_to_string(&cfg).unwrap().replace(r#"consensus = "highest""#, "").replace(r#"{ policy = "queue-depth" }, { policy = "smooth" }"#, r#"{ policy = "queue-depth" }"#)).unwrap();
    let (ok, r2, text) = replay(dir.path(), &cfg, &["--candidate", other.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert_eq!(r2["candidate_set"], "strategies [queue-depth]", "{text}");
    assert_eq!(r2["summary"]["candidate"]["steps"], replayed);

    // The policy changed since: the replay parts from the record, and says where.
    std::fs::write(dir.path().join("policies.d/smooth.rhai"), SMOOTH.replace("/ 3.0", "/ 2.0")).unwrap();
    let (ok, r3, text) = replay(dir.path(), &cfg, &[]);
    assert!(ok, "{text}");
    let differed = r3["summary"]["differed"].as_u64().unwrap();
    assert!(differed > 0, "{text}");
    let (_, table, _) = {
        let o = Command::new(scalewise_bin()).args(["simulate", "--from-journal"]).arg(dir.path().join("journal.redb")).arg("--config").arg(&cfg).arg("--out").arg(dir.path().join("replay")).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), ())
    };
    assert!(table.contains("strategy `smooth`") || table.contains("the inputs differ"), "the first difference is named: {table}");
}

/// What cannot be replayed says why: no --config, a pool the journal does
/// not have, a journal a running host holds.
#[test]
fn a_replay_that_cannot_run_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let host = Host::start(&cfg, free_port());
    host.wait_for("a decision", Duration::from_secs(10), |h| (h.get("/pools/web")["decisions"].as_u64()? > 1).then_some(()));
    let (ok, _, text) = replay(dir.path(), &cfg, &[]);
    assert!(!ok && text.contains("a running host holds"), "{text}");
    drop(host);
    let o = Command::new(scalewise_bin()).args(["simulate", "--from-journal"]).arg(dir.path().join("journal.redb")).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--config"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(scalewise_bin()).args(["simulate", "--from-journal"]).arg(dir.path().join("journal.redb")).arg("--config").arg(&cfg).args(["--pool", "nope", "--out"]).arg(dir.path().join("r")).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no decisions of pool `nope`") && err.contains("web"), "{err}");
}

/// A real Prometheus scrapes the host while its pool follows a changing
/// queue; `--from-prometheus` then replays the span from what Prometheus
/// kept (the pool's exported metric, capacity and desired capacity), with
/// a candidate beside it.
#[test]
fn a_pools_history_in_a_real_prometheus_replays_beside_what_it_decided() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let port = free_port();
    let prom = start_prometheus(&[("scalewise", port)]);
    let host = Host::start(&cfg, port);
    // The span replayed starts once Prometheus scrapes the pool: on a busy
    // machine its first scrape can come seconds after the host is up, and
    // decisions before it have no capacity to replay against.
    host.wait_for("Prometheus's first scrape of the pool", Duration::from_secs(30), |_| prom_query(&prom, r#"scalewise_pool_capacity{pool="web",state="running"}"#));
    for q in [20.0, 20.0, 50.0, 50.0, 50.0, 35.0, 35.0, 35.0, 60.0, 60.0, 60.0, 60.0] {
        let (s, b) = host.post("/pools/web/metrics", Some("t"), &format!(r#"{{"name":"queue_depth","value":{q}}}"#));
        assert_eq!(s, 200, "{b}");
        std::thread::sleep(Duration::from_millis(1000));
    }
    host.wait_for("Prometheus to have the pool", Duration::from_secs(30), |_| prom_query(&prom, r#"scalewise_pool_desired_capacity{pool="web"}"#).filter(|v| *v == 6.0));
    let url = format!("http://127.0.0.1:{}", prom.port);
    let out = dir.path().join("prom-replay");
    let o = Command::new(scalewise_bin())
        .args(["simulate", "--from-prometheus", &url, "--since", "14s", "--step-ms", "1000", "--json", "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &r["summary"];
    println!("from Prometheus: {}", serde_json::to_string(s).unwrap());
    let replayed = s["replayed"].as_u64().unwrap();
    assert!(replayed >= 8, "{text}");
    // Scrapes lag the pool by up to a second, so not every step agrees;
    // most do, and every step has the candidate's decision.
    assert!(s["reproduced"].as_u64().unwrap() * 2 > replayed, "{text}");
    assert_eq!(s["candidate"]["steps"], replayed, "{text}");
    assert!(r["note"].as_str().unwrap().contains("agrees"), "{text}");

    // A Prometheus that does not scrape this host says so.
    let empty = start_prometheus(&[]);
    let o = Command::new(scalewise_bin())
        .args(["simulate", "--from-prometheus", &format!("http://127.0.0.1:{}", empty.port), "--since", "1m", "--out"])
        .arg(&out)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("does it scrape this host's /metrics"), "{err}");
}
