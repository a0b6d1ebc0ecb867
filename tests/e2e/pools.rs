//! Pools end to end: the demo scales up on its spike and back down, the
//! API refuses bad calls with clear errors, and a host killed with SIGKILL
//! between journalling an action and taking it resumes without repeating it.

use std::path::Path;
use std::time::Duration;

use scalewise_e2e::host::{Host, SLEEPER, free_port, install_builtins, queue_depth_config};
use serde_json::Value;

fn capacity(h: &Host, pool: &str) -> u64 {
    let p = h.get(&format!("/pools/{pool}"));
    p["running"].as_u64().unwrap() + p["booting"].as_u64().unwrap()
}

/// Live worker processes of a pool, from its pidfiles.
fn live_workers(run_dir: &Path) -> usize {
    std::fs::read_dir(run_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
                .filter(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let pid = text.split_whitespace().next().unwrap_or("0");
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The demo of `examples/scalewise.toml` in `dir`, on `port`, with its
/// policies built and each `(from, to)` replaced; fails if one is not there.
fn demo(dir: &Path, port: u16, changes: &[(&str, &str)]) -> Host {
    install_builtins(&dir.join("policies.d"), &["queue-depth", "target-tracking", "safest", "budget-cap"]);
    let mut config = std::fs::read_to_string(scalewise_e2e::root().join("examples/scalewise.toml")).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let local = [("cache_dir = \"../.scalewise/cache\"", "cache_dir = \"cache\""), ("../.scalewise/", ""), ("127.0.0.1:7070", listen.as_str())];
    for (from, to) in local.iter().chain(changes) {
        assert!(config.contains(from), "the example no longer has `{from}`");
        config = config.replace(from, to);
    }
    let path = dir.join("scalewise.toml");
    std::fs::write(&path, config).unwrap();
    Host::start(&path, port)
}

#[test]
fn the_demo_scales_up_on_the_spike_and_back_down() {
    let dir = tempfile::tempdir().unwrap();
    // The README's demo, compressed: the spike comes 4.5 s into a 150-second
    // day and lasts 10 s; the day's own peak (2 jobs/s) needs one or two workers.
    let host = demo(
        dir.path(),
        free_port(),
        &[
            ("day_secs = 180", "day_secs = 150"),
            ("peak_rate = 10.0", "peak_rate = 2.0"),
            ("spike_at = 0.12", "spike_at = 0.03"),
            ("spike_len = 0.10", "spike_len = 0.07"),
            ("spike_factor = 3.0", "spike_factor = 8.0"),
            ("interval_ms = 1000", "interval_ms = 500"),
            ("scale_down_cooldown_secs = 10", "scale_down_cooldown_secs = 2"),
            ("scale_down_stabilization_secs = 20", "scale_down_stabilization_secs = 5"),
            ("value = 2, period_secs = 5", "value = 4, period_secs = 5"),
        ],
    );

    let peak = host.wait_for("the pool to grow on the spike", Duration::from_secs(40), |h| {
        let c = capacity(h, "demo");
        (c >= 4).then_some(c)
    });
    host.wait_for("the pool to shrink after the spike", Duration::from_secs(60), |h| (capacity(h, "demo") <= 2).then_some(()));
    // Both directions were decisions with actions the journal explains.
    let decisions: Value = host.get("/pools/demo/decisions?limit=1000");
    let actions: Vec<&Value> = decisions.as_array().unwrap().iter().filter_map(|d| d["action"].as_object().map(|_| &d["action"])).collect();
    assert!(actions.iter().any(|a| a["to"].as_u64() > a["from"].as_u64()), "no scale-up recorded");
    assert!(actions.iter().any(|a| a["to"].as_u64() < a["from"].as_u64()), "no scale-down recorded");
    assert!(actions.iter().all(|a| a["outcome"]["status"] == "done"), "{actions:?}");
    let with_votes = decisions.as_array().unwrap().iter().find(|d| d["votes"].as_array().unwrap().len() == 2).unwrap();
    assert!(with_votes["votes"].as_array().unwrap().iter().all(|v| v["proposal"]["reason"].is_string()));
    assert_eq!(with_votes["consensus"]["policy"], "safest");
    // Its /metrics: what an operator's dashboards read, and valid as promtool sees it.
    let metrics = reqwest::blocking::get(format!("{}/metrics", host.base)).unwrap().text().unwrap();
    for series in [
        "scalewise_build_info{version=",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "scalewise_pool_min{pool=\"demo\"} 1",
        "scalewise_pool_max{pool=\"demo\"}",
        "scalewise_pool_cost_per_hour{pool=\"demo\"}",
        "scalewise_budget_spent{pool=\"demo\"}",
        "scalewise_pool_metric{pool=\"demo\",metric=\"queue_depth\"}",
    ] {
        assert!(metrics.contains(series), "/metrics lacks {series}");
    }
    scalewise_e2e::tools::promtool_check_metrics(&metrics).unwrap_or_else(|e| panic!("promtool check metrics: {e}"));
    // Every series the shipped Grafana dashboard queries is one the host exports.
    let families: Vec<&str> = metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).collect();
    let exported = |name: &str| families.iter().any(|f| name == *f || [*f, "_bucket"].concat() == name || [*f, "_sum"].concat() == name || [*f, "_count"].concat() == name);
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(scalewise_e2e::root().join("deploy/grafana/scalewise.json")).unwrap()).unwrap();
    let mut queries: Vec<String> = dashboard["panels"].as_array().unwrap().iter().flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned())).collect();
    queries.extend(dashboard["templating"]["list"].as_array().unwrap().iter().filter_map(|v| v["query"].as_str().map(str::to_owned)));
    let mut named = 0;
    for q in &queries {
        for word in q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).filter(|w| w.starts_with("scalewise_") || w.starts_with("process_")) {
            assert!(exported(word), "the Grafana dashboard queries `{word}` ({q}), which /metrics does not export");
            named += 1;
        }
    }
    assert!(named >= 20, "{named} series named in the dashboard");
    eprintln!("peak capacity {peak}, {} actions", actions.len());
}

/// Pool `k`: queue-depth on pushed `queue_depth`, 0..=10 sleeping workers,
/// a 60 s cooldown each way and no other guardrail.
fn pool_config(dir: &Path) -> std::path::PathBuf {
    queue_depth_config(
        dir,
        "t0ken",
        &format!(
            r#"
[[pools]]
id = "k"
min = 0
max = 10
interval_ms = 300
strategies = [{{ policy = "queue-depth" }}]
provider = {{ kind = "local", command = {SLEEPER}, grace_secs = 2, ready_after_ms = 200 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 30 }}]
guardrails = {{ tolerance = 0.0, scale_up_cooldown_secs = 60, scale_down_cooldown_secs = 60, scale_down_stabilization_secs = 0, scale_up_limits = [], scale_down_limits = [] }}
"#
        ),
    )
}

fn push(h: &Host, value: f64) {
    let (status, body) = h.post("/pools/k/metrics", Some("t0ken"), &format!(r#"{{"name":"queue_depth","value":{value}}}"#));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn kill_9_between_intent_and_action_resumes_without_repeating_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pool_config(dir.path());
    let run_dir = dir.path().join(".scalewise/run/k");
    // Every action waits 3 s between its journalled intent and the target.
    let mut host = Host::start_with(&config, port, &[("SCALEWISE_FAILPOINT_ACT_DELAY_MS", "3000")]);
    push(&host, 50.0);
    let intent = host.wait_for("the scale-up intent", Duration::from_secs(20), |h| {
        let d: Value = h.get("/pools/k/decisions?limit=1");
        let last = d.get(0)?.clone();
        (last["action"]["outcome"]["status"] == "pending").then_some(last)
    });
    assert_eq!((intent["action"]["from"].as_u64(), intent["action"]["to"].as_u64()), (Some(0), Some(5)));
    let before: Vec<u64> = host.get("/pools/k/decisions?limit=1000").as_array().unwrap().iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    host.kill9();
    assert_eq!(live_workers(&run_dir), 0, "the kill came before the target was called");

    host.env.clear();
    host.restart();
    push(&host, 90.0);
    host.wait_for("the interrupted action to complete", Duration::from_secs(20), |h| (capacity(h, "k") == 5).then_some(()));
    // Every decision made before the kill is in the journal, and the
    // interrupted one now says done.
    let after: Vec<Value> = host.get("/pools/k/decisions?limit=1000").as_array().unwrap().clone();
    for seq in &before {
        assert!(after.iter().any(|d| d["seq"].as_u64() == Some(*seq)), "decision {seq} lost");
    }
    let resumed = after.iter().find(|d| d["seq"] == intent["seq"]).unwrap();
    assert_eq!(resumed["action"]["outcome"]["status"], "done");
    // Queue 90 wants 9, but the scale-up cooldown, started before the kill, holds.
    let held = host.wait_for("a decision clamped by the cooldown", Duration::from_secs(10), |h| {
        let d: Value = h.get("/pools/k/decisions?limit=5");
        d.as_array()?.iter().find(|d| d["proposed"] == 9 && d["clamps"].as_array().unwrap().iter().any(|c| c["guardrail"] == "scale_up_cooldown")).cloned()
    });
    assert_eq!(held["desired"], 5);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(capacity(&host, "k"), 5);
    assert_eq!(live_workers(&run_dir), 5, "exactly the five workers of the one action");
    // Sequence numbers continue where the killed host stopped.
    let max_before = before.iter().max().unwrap();
    assert!(after.iter().any(|d| d["seq"].as_u64().unwrap() > *max_before));
    assert!(host.terminate().success());
    assert_eq!(live_workers(&run_dir), 0, "a graceful stop drains the workers");
}

/// Workers of a pool the config lost while the host was down (a `kill -9`,
/// then an edit) are stopped at the next start, not left running with
/// nothing to manage them; a pool it still has keeps its own.
#[test]
fn a_pool_removed_while_the_host_was_down_has_its_workers_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pool_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    let gone = format!(
        "\n[[pools]]\nid = \"gone\"\nmin = 2\nmax = 2\nstrategies = [{{ policy = \"queue-depth\" }}]\n\
         provider = {{ kind = \"local\", command = {SLEEPER}, grace_secs = 2 }}\n\
         metrics = [{{ name = \"queue_depth\", source = \"push\" }}]\n"
    );
    std::fs::write(&config, format!("{text}{gone}")).unwrap();
    let mut host = Host::start(&config, port);
    push(&host, 20.0);
    let (kept, lost) = (dir.path().join(".scalewise/run/k"), dir.path().join(".scalewise/run/gone"));
    host.wait_for("two workers in each pool", Duration::from_secs(20), |_| (live_workers(&kept) == 2 && live_workers(&lost) == 2).then_some(()));
    host.kill9();
    assert_eq!(live_workers(&lost), 2, "a kill -9 leaves them running");
    // Should the host leave them, they would outlive the test (and hold its
    // output open): kill them at the end, whatever happens.
    struct Reap(Vec<String>);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").arg("-9").args(&self.0).output();
        }
    }
    let pids = std::fs::read_dir(&lost).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "pid"));
    let _reap = Reap(pids.filter_map(|e| std::fs::read_to_string(e.path()).ok()?.split_whitespace().next().map(str::to_owned)).collect());
    // The pool kept names its run directory in other words: it is still its.
    let kept_elsewise = text.replace("grace_secs = 2, ready_after_ms = 200", "grace_secs = 2, ready_after_ms = 200, run_dir = \"./.scalewise/../.scalewise/run/k\"");
    assert_ne!(kept_elsewise, text);
    std::fs::write(&config, &kept_elsewise).unwrap();
    host.restart();
    host.wait_for("the lost pool's workers to stop", Duration::from_secs(20), |_| (live_workers(&lost) == 0).then_some(()));
    assert_eq!(live_workers(&kept), 2, "the pool still configured adopted its own");
    assert_eq!(capacity(&host, "k"), 2);
    assert!(host.terminate().success());
}

#[test]
fn bad_api_calls_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pool_config(dir.path());
    let host = Host::start(&config, port);
    let (s, b) = host.post("/pools/k/scale", None, r#"{"capacity":3,"reason":"x"}"#);
    assert_eq!((s, b["error"].as_str().unwrap().contains("Bearer")), (401, true));
    let (s, _) = host.post("/pools/k/scale", Some("wrong"), r#"{"capacity":3,"reason":"x"}"#);
    assert_eq!(s, 401);
    let (s, b) = host.post("/pools/k/scale", Some("t0ken"), "{capacity: 3");
    assert_eq!(s, 400, "{b}");
    let (s, b) = host.post("/pools/k/scale", Some("t0ken"), r#"{"capacity":30,"reason":"too many"}"#);
    assert_eq!(s, 422);
    assert!(b["error"].as_str().unwrap().contains("outside this pool's bounds 0..=10"), "{b}");
    let (s, b) = host.post("/pools/nope/scale", Some("t0ken"), r#"{"capacity":3,"reason":"x"}"#);
    assert_eq!(s, 404);
    assert!(b["error"].as_str().unwrap().contains("configured pools: k"), "{b}");
    let (s, b) = host.post("/pools/k/metrics", Some("t0ken"), r#"{"name":"queue_depth","samples":[{"at":1,"value":1},{"at":2,"value":"NaN"}]}"#);
    assert_eq!(s, 400, "{b}");
    // Pausing keeps deciding but stops acting.
    assert_eq!(host.post("/pools/k/pause", Some("t0ken"), "").0, 200);
    push(&host, 80.0);
    let paused = host.wait_for("a paused decision", Duration::from_secs(10), |h| {
        let d: Value = h.get("/pools/k/decisions?limit=1");
        (d[0]["mode"] == "paused" && d[0]["proposed"] == 8).then(|| d[0].clone())
    });
    assert_eq!(paused["action"]["outcome"]["status"], "not_taken");
    assert_eq!(capacity(&host, "k"), 0);
    assert_eq!(host.post("/pools/k/resume", Some("t0ken"), "").0, 200);
    push(&host, 0.0);
    // A manual scale inside the bounds is an action with its reason.
    let (s, b) = host.post("/pools/k/scale", Some("t0ken"), r#"{"capacity":2,"reason":"load test at noon"}"#);
    assert_eq!(s, 200, "{b}");
    let d: Value = host.get("/pools/k/decisions?limit=1");
    assert_eq!(d[0]["action"]["cause"], "manual");
    assert_eq!(d[0]["action"]["reason"], "load test at noon");
    assert!(d[0]["at_utc"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", d[0]);
    assert!(host.get("/pools/k")["hold"]["until_utc"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn a_worker_command_that_does_not_exist_is_reported_and_the_host_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pool_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace(SLEEPER, r#"["/nonexistent/worker"]"#);
    std::fs::write(&config, text).unwrap();
    let host = Host::start(&config, port);
    push(&host, 30.0);
    let error = host.wait_for("the launch error", Duration::from_secs(10), |h| h.get("/pools/k")["last_error"].as_str().map(String::from));
    assert!(error.contains("/nonexistent/worker") && error.contains("No such file"), "{error}");
    // Counted by what asked and by the error.
    let metrics = host.wait_for("a failed action counted", Duration::from_secs(10), |h| {
        let m = reqwest::blocking::get(format!("{}/metrics", h.base)).unwrap().text().unwrap();
        m.contains("scalewise_actions_failed_total{pool=\"k\",cause=\"policy\",error=\"launch\"}").then_some(m)
    });
    scalewise_e2e::tools::promtool_check_metrics(&metrics).unwrap_or_else(|e| panic!("promtool check metrics: {e}"));
    let members = host.get("/pools/k")["members"]["members"].clone();
    assert!(members.as_array().unwrap().iter().all(|m| m["state"] == "backoff"), "{members}");
    // Still deciding.
    let n = host.get("/pools/k")["decisions"].as_u64().unwrap();
    host.wait_for("more decisions", Duration::from_secs(5), |h| (h.get("/pools/k")["decisions"].as_u64().unwrap() > n).then_some(()));
}

#[test]
fn a_full_disk_stops_the_journal_not_the_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pool_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace("interval_ms = 300", "interval_ms = 100");
    std::fs::write(&config, text).unwrap();
    let journal = dir.path().join("journal.redb");
    let mut host = Host::start(&config, port);
    host.wait_for("some decisions", Duration::from_secs(10), |h| (h.get("/pools/k")["decisions"].as_u64()? >= 5).then_some(()));
    assert!(host.terminate().success());
    let written: Vec<u64> = {
        let h = Host::start(&config, port);
        let seqs = h.get("/pools/k/decisions?limit=1000").as_array().unwrap().iter().map(|d| d["seq"].as_u64().unwrap()).collect();
        drop(h);
        seqs
    };

    // The disk is now full: the journal may not grow by a byte.
    let size = std::fs::metadata(&journal).unwrap().len();
    host.file_size_limit = Some(size);
    host.restart();
    push(&host, 20.0);
    let error = host.wait_for("the journal to report the full disk", Duration::from_secs(60), |h| h.get("/pools/k")["journal_error"].as_str().map(String::from));
    assert!(error.contains("journal write failed"), "{error}");
    // Not ready while its journal cannot be written, and /readyz says why.
    let r = reqwest::blocking::get(format!("{}/readyz", host.base)).unwrap();
    assert_eq!(r.status(), 503);
    let ready: Value = r.json().unwrap();
    assert!(ready["problems"].to_string().contains("pool `k`: journal write failed"), "{ready}");
    // Still deciding, still acting, still answering.
    let n = host.get("/pools/k")["decisions"].as_u64().unwrap();
    host.wait_for("decisions to go on", Duration::from_secs(5), |h| (h.get("/pools/k")["decisions"].as_u64()? > n + 3).then_some(()));
    host.wait_for("the scale-up despite the journal", Duration::from_secs(10), |h| (capacity(h, "k") == 2).then_some(()));
    assert!(host.terminate().success());

    // Space again: nothing written before is lost.
    host.file_size_limit = None;
    host.restart();
    let after = host.get("/pools/k/decisions?limit=1000");
    for seq in written {
        assert!(after.as_array().unwrap().iter().any(|d| d["seq"].as_u64() == Some(seq)), "decision {seq} lost");
    }
}

#[test]
fn large_changes_wait_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pool_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace("interval_ms = 300", "interval_ms = 300\napproval_above = 2\napproval_ttl_secs = 60");
    std::fs::write(&config, text).unwrap();
    let host = Host::start(&config, port);
    push(&host, 50.0);
    let pending = host.wait_for("a change held for approval", Duration::from_secs(10), |h| {
        let p = h.get("/pools/k");
        (!p["pending_approval"].is_null()).then(|| p["pending_approval"].clone())
    });
    assert_eq!((pending["from"].as_u64(), pending["to"].as_u64()), (Some(0), Some(5)));
    let d: Value = host.get("/pools/k/decisions?limit=1");
    assert_eq!(d[0]["action"]["outcome"]["status"], "awaiting_approval");
    assert_eq!(capacity(&host, "k"), 0, "nothing happens before approval");
    let seq = pending["seq"].as_u64().unwrap();
    // Ticks that ask for the same change keep the request an operator is
    // looking at: its number and its expiry.
    std::thread::sleep(Duration::from_millis(1200));
    let again = host.get("/pools/k")["pending_approval"].clone();
    assert_eq!(again, pending, "the same change asked again is the same request");
    assert!(host.get("/pools/k/decisions?limit=1")[0]["seq"].as_u64().unwrap() > seq + 2, "the pool kept deciding meanwhile");
    assert_eq!(host.post(&format!("/pools/k/approve/{}", seq + 1000), Some("t0ken"), "").0, 422, "only the pending decision can be approved");
    let (s, b) = host.post(&format!("/pools/k/approve/{seq}"), Some("t0ken"), "");
    assert_eq!(s, 200, "{b}");
    host.wait_for("the approved change", Duration::from_secs(5), |h| (capacity(h, "k") == 5).then_some(()));
    let d: Value = host.get("/pools/k/decisions?limit=20");
    assert!(d.as_array().unwrap().iter().any(|d| d["action"]["cause"] == "approval" && d["action"]["outcome"]["status"] == "done"));
}

#[test]
fn a_scale_up_past_free_gpu_memory_is_limited_and_budget_alerts_reach_the_api_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Queue-depth at 10 per worker; a worker needs 10 GiB of GPU memory,
    // 2 kept in reserve; a worker-hour costs 3600, so a second of one
    // worker eats 1 of the budget of 2 and the alerts fire within seconds.
    let config = queue_depth_config(
        dir.path(),
        "t0ken",
        &format!(
            r#"
[[pools]]
id = "g"
min = 0
max = 10
interval_ms = 300
strategies = [{{ policy = "queue-depth" }}]
provider = {{ kind = "local", command = {SLEEPER}, grace_secs = 2, ready_after_ms = 2000 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 30 }}, {{ name = "gpu_free_gib", source = "push", window_secs = 30 }}]
limits = [{{ metric = "gpu_free_gib", per_member = 10.0, reserve = 2.0, label = "GPU memory" }}]
cost = {{ kind = "m", budget = 2.0, budget_period = "month", catalog = [{{ name = "m", on_demand_hourly = 3600.0 }}] }}
guardrails = {{ tolerance = 0.0, scale_down_stabilization_secs = 0 }}
"#
        ),
    );
    let host = Host::start(&config, port);
    for (name, value) in [("gpu_free_gib", 25.0), ("queue_depth", 80.0)] {
        let (status, body) = host.post("/pools/g/metrics", Some("t0ken"), &format!(r#"{{"name":"{name}","value":{value}}}"#));
        assert_eq!(status, 200, "{body}");
    }
    // 80 queued wants 8 workers; (25 − 2) / 10 fit 2.
    let limited = host.wait_for("a decision limited by GPU memory", Duration::from_secs(20), |h| {
        let d: Value = h.get("/pools/g/decisions?limit=20");
        d.as_array()?.iter().find(|d| d["limited"].is_object()).cloned()
    });
    assert_eq!((limited["limited"]["wanted"].as_u64(), limited["limited"]["to"].as_u64()), (Some(8), Some(2)), "{limited}");
    assert!(limited["limited"]["why"].as_str().unwrap().starts_with("GPU memory: 25.0 free"), "{limited}");
    assert_eq!(limited["desired"], 2);
    // While they boot, the reading does not show their memory yet, and
    // they are not launched twice; once up, they hold 20 GiB of it.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(capacity(&host, "g"), 2, "booting workers count against the limit");
    let (status, body) = host.post("/pools/g/metrics", Some("t0ken"), r#"{"name":"gpu_free_gib","value":5}"#);
    assert_eq!(status, 200, "{body}");
    host.wait_for("two workers up", Duration::from_secs(10), |h| (h.get("/pools/g")["running"] == 2).then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(capacity(&host, "g"), 2, "never more than fit");

    // The budget: spent, alerts fired, in the pool's state and in /metrics.
    let budget = host.wait_for("the 100 % budget alert", Duration::from_secs(20), |h| {
        let b = h.get("/pools/g")["budget"].clone();
        (b["fired"].as_array()?.len() == 3).then_some(b)
    });
    assert_eq!(budget["period"], "month");
    assert!(budget["percent"].as_f64().unwrap() >= 100.0, "{budget}");
    let decisions: Value = host.get("/pools/g/decisions?limit=600");
    let alerts: Vec<&str> = decisions.as_array().unwrap().iter().flat_map(|d| d["alerts"].as_array().into_iter().flatten()).filter_map(Value::as_str).collect();
    assert_eq!(alerts.len(), 3, "each threshold fires once: {alerts:?}");
    let metrics = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics")).unwrap().text().unwrap();
    for line in ["scalewise_budget_alert{pool=\"g\",threshold=\"50\"} 1", "scalewise_budget_alert{pool=\"g\",threshold=\"100\"} 1", "scalewise_budget_limit{pool=\"g\"} 2"] {
        assert!(metrics.contains(line), "/metrics lacks {line}");
    }
    assert!(metrics.contains("scalewise_budget_spent{pool=\"g\"}"), "{metrics}");
}

#[test]
fn without_a_gpu_an_nvml_pool_starts_reports_the_source_unavailable_and_still_decides() {
    let dir = tempfile::tempdir().unwrap();
    install_builtins(&dir.path().join("policies.d"), &["gpu-memory", "safest"]);
    let port = free_port();
    // gpu-memory reads free GPU memory from NVML; queue-depth the pushed
    // queue. With no NVIDIA driver the first abstains and the second decides.
    let config = queue_depth_config(
        dir.path(),
        "t0ken",
        &format!(
            r#"
[policies.settings.gpu-memory]
free_metric = "gpu_free_mib"
model = "small"
models = {{ small = 6144 }}

[sources.gpu]
kind = "nvml"

[[pools]]
id = "n"
min = 0
max = 6
interval_ms = 300
strategies = [{{ policy = "gpu-memory" }}, {{ policy = "queue-depth" }}]
consensus = "safest"
provider = {{ kind = "local", command = {SLEEPER}, grace_secs = 2, ready_after_ms = 200 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 30 }}, {{ name = "gpu_free_mib", source = "gpu", query = "memory_free_mib" }}]
guardrails = {{ tolerance = 0.0, scale_down_stabilization_secs = 0 }}
"#
        ),
    );
    let host = Host::start(&config, port);
    let sources = host.get("/sources");
    let gpu = &sources[0];
    assert_eq!((gpu["name"].as_str(), gpu["kind"].as_str()), (Some("gpu"), Some("nvml")), "{sources}");
    if gpu["status"]["state"] == "up" {
        eprintln!("an NVIDIA driver answers on this machine; the no-GPU path is not exercised: {sources}");
        return;
    }
    assert_eq!(gpu["status"]["state"], "unavailable", "{sources}");
    assert!(gpu["status"]["detail"].as_str().unwrap().contains("NVML not available"), "{sources}");
    let metrics = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics")).unwrap().text().unwrap();
    assert!(metrics.contains("scalewise_source_up{source=\"gpu\",kind=\"nvml\"} 0"), "{metrics}");

    let (status, body) = host.post("/pools/n/metrics", Some("t0ken"), r#"{"name":"queue_depth","value":30}"#);
    assert_eq!(status, 200, "{body}");
    host.wait_for("queue-depth to scale the pool alone", Duration::from_secs(20), |h| (capacity(h, "n") == 3).then_some(()));
    let d: Value = host.get("/pools/n/decisions?limit=1");
    let d = &d[0];
    let reading = d["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "gpu_free_mib").unwrap();
    assert!(reading["error"].as_str().unwrap().contains("NVML not available"), "{reading}");
    let gpu_vote = d["votes"].as_array().unwrap().iter().find(|v| v["expert"] == "gpu-memory").unwrap();
    assert!(gpu_vote["abstained"].is_string(), "{gpu_vote}");
}

/// The README's manual scale, on the demo with its times shortened: the 6
/// holds for the hold time while the policies' votes are recorded, and the
/// pool then comes down through the guardrails in their documented order,
/// each clamp saying which rule and why.
#[test]
fn the_readme_manual_scale_holds_then_the_guardrails_step_down_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let host = demo(
        dir.path(),
        free_port(),
        &[
            ("peak_rate = 10.0", "peak_rate = 0.5"),
            ("spike_at = 0.12", "spike_at = 0.95"),
            ("interval_ms = 1000", "interval_ms = 500"),
            ("manual_hold_secs = 60", "manual_hold_secs = 5"),
            ("scale_down_stabilization_secs = 20", "scale_down_stabilization_secs = 4"),
            // Longer than the step limit's 5 s period, so the cooldown is what shows next.
            ("scale_down_cooldown_secs = 10", "scale_down_cooldown_secs = 7"),
        ],
    );
    host.wait_for("the demo to settle low", Duration::from_secs(30), |h| (capacity(h, "demo") <= 2).then_some(()));

    // The README's own request.
    let readme = std::fs::read_to_string(scalewise_e2e::root().join("README.md")).unwrap();
    let body = readme.split("/pools/demo/scale").nth(1).and_then(|r| r.split("-d '").nth(1)).and_then(|r| r.split('\'').next()).unwrap();
    let (status, answer) = host.post("/pools/demo/scale", Some("demo-token"), body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["capacity"], 6);
    let (since, until) = (answer["hold"]["since"].as_i64().unwrap(), answer["hold"]["until"].as_i64().unwrap());
    assert_eq!(until - since, 5000, "the pool's manual_hold_secs");

    host.wait_for("the hold to end and the pool to come down", Duration::from_secs(40), |h| (capacity(h, "demo") <= 2).then_some(()));
    let all: Vec<Value> = host.get("/pools/demo/decisions?limit=1000").as_array().unwrap().iter().rev().cloned().collect();
    let manual = all.iter().position(|d| d["action"]["cause"] == "manual").unwrap();
    let after = &all[manual + 1..];
    let rules = |d: &Value| d["clamps"].as_array().unwrap().iter().map(|c| c["guardrail"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    // During the hold: every decision holds 6, says why, and records the votes.
    let held: Vec<&Value> = after.iter().filter(|d| d["at"].as_i64().unwrap() < until).collect();
    assert!(held.len() >= 5, "{} decisions in a 5 s hold at 500 ms", held.len());
    for d in &held {
        assert_eq!((d["desired"].as_u64(), rules(d).contains(&"manual_hold".to_string())), (Some(6), true), "{d}");
        assert!(d["votes"].as_array().unwrap().iter().any(|v| v["proposal"]["desired"].as_f64().is_some_and(|p| p < 6.0)), "the policies wanted less: {d}");
        assert!(d["action"].is_null(), "{d}");
    }
    let reason = &held[0]["clamps"].as_array().unwrap().iter().find(|c| c["guardrail"] == "manual_hold").unwrap()["reason"];
    assert!(reason.as_str().unwrap().contains("an operator set 6"), "{reason}");
    // After it: stabilization first (the manual 6 is the window's highest), ...
    let rest: Vec<&Value> = after.iter().filter(|d| d["at"].as_i64().unwrap() >= until).collect();
    assert!(rules(rest[0]).contains(&"scale_down_stabilization".to_string()) && rest[0]["desired"] == 6, "{}", rest[0]);
    assert!(rest.iter().all(|d| !rules(d).contains(&"manual_hold".to_string())), "the hold ended");
    // ... then the step limit, named, takes 2 at a time ...
    let first_down = rest.iter().find(|d| d["action"]["to"].as_u64().is_some_and(|t| t < 6)).unwrap();
    assert_eq!(first_down["action"]["to"], 4, "{first_down}");
    let limit = first_down["clamps"].as_array().unwrap().iter().find(|c| c["guardrail"] == "scale_down_limit").expect("the step limit clamped");
    assert!(limit["reason"].as_str().unwrap().starts_with("scale_down_limits[0]: at most 2 members per 5s"), "{limit}");
    // The held ticks recorded 6 too, so the window runs from the last of
    // them, which may be up to one tick before the hold's end.
    let last_six = held.last().unwrap()["at"].as_i64().unwrap();
    assert!(first_down["at"].as_i64().unwrap() > last_six + 4000, "not before the stabilization window: {first_down}, last held at {last_six}");
    // ... and, once the step limit's period is over, the cooldown counts
    // from that action.
    let cooled = rest
        .iter()
        .filter(|d| d["seq"].as_u64() > first_down["seq"].as_u64())
        .find_map(|d| d["clamps"].as_array().unwrap().iter().find(|c| c["guardrail"] == "scale_down_cooldown").cloned())
        .expect("a decision in the scale-down cooldown");
    assert!(cooled["reason"].as_str().unwrap().contains("the last action, up or down (6 → 4), was less than 7s ago"), "{cooled}");
}
