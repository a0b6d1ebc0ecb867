//! The production lifecycle on a running host: config reloads (through the
//! API, `SIGHUP` and the watched file) that add, remove and change pools
//! without a restart and without a missed tick, and reloads that must be
//! refused whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalewise_e2e::host::{Host, SLEEPER, free_port, queue_depth_config};
use serde_json::Value;

/// These tests hold a pool's ticks to absolute bounds (no gap over three
/// intervals, a lag p99 under one) across reloads. Run side by side, seven
/// hosts with their workers on two cores are the noise they would measure
/// (a 350 ms lag p99 in one CI run, under 100 ms alone), so they run one
/// at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool on local sleeper workers deciding every `interval` ms by `strategies`.
fn pool(id: &str, strategies: &str) -> String {
    format!(
        r#"
[[pools]]
id = "{id}"
min = 1
max = 6
interval_ms = 200
strategies = [{strategies}]
provider = {{ kind = "local", command = {SLEEPER}, grace_secs = 1, ready_after_ms = 100 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 30 }}]
guardrails = {{ tolerance = 0.0, scale_up_cooldown_secs = 0, scale_down_cooldown_secs = 600, scale_down_stabilization_secs = 0, scale_up_limits = [], scale_down_limits = [] }}
"#
    )
}

const QD: &str = r#"{ policy = "queue-depth" }"#;

fn setup(dir: &Path, pools: &str) -> PathBuf {
    let cfg = queue_depth_config(dir, "t", pools);
    std::fs::write(dir.join("policies.d/one.rhai"), r#"fn strategy(input) { #{ desired: 1, reason: "one" } }"#).unwrap();
    std::fs::write(
        dir.join("policies.d/lowest.rhai"),
        r#"fn consensus(input) {
             let lo = ();
             for v in input.votes { if "proposed" in v.ballot { let d = v.ballot.proposed.desired; if lo == () || d < lo { lo = d; } } }
             if lo == () { lo = input.pool.running; }
             #{ desired: lo, explanation: "the lowest proposal" }
           }"#,
    )
    .unwrap();
    cfg
}

/// Rewrite the config's pools, keeping its head.
fn rewrite(cfg: &Path, pools: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let head = text.split("\n[[pools]]").next().unwrap().to_owned();
    let tmp = cfg.with_extension("new");
    std::fs::write(&tmp, format!("{head}\n{pools}")).unwrap();
    // As editors and ConfigMaps do: a whole new file renamed over the old.
    std::fs::rename(&tmp, cfg).unwrap();
}

fn decisions(h: &Host, pool: &str) -> Vec<Value> {
    let mut d = h.get(&format!("/pools/{pool}/decisions?limit=600")).as_array().cloned().unwrap_or_default();
    d.reverse();
    d
}

/// The pool's decisions have consecutive numbers, and no gap between two
/// is over `most` ms: no tick was missed.
fn continuous(d: &[Value], most: i64) -> Result<(), String> {
    for w in d.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b["seq"].as_u64() != a["seq"].as_u64().map(|s| s + 1) {
            return Err(format!("decision #{} follows #{}", b["seq"], a["seq"]));
        }
        let gap = b["at"].as_i64().unwrap() - a["at"].as_i64().unwrap();
        if gap > most {
            return Err(format!("{gap} ms between #{} and #{}", a["seq"], b["seq"]));
        }
    }
    Ok(())
}

fn metric(h: &Host, line: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("{}/metrics", h.base)).unwrap().text().unwrap();
    text.lines().find_map(|l| l.strip_prefix(line)).and_then(|v| v.trim().parse().ok())
}

/// Acceptance: a reload that adds a pool, removes one and changes a
/// third's strategies applies without a restart; the untouched pool's
/// decisions and state are continuous across it, and the changed pool keeps
/// its memory. Then a reload by SIGHUP and by the file alone.
#[test]
fn a_reload_adds_removes_and_changes_pools_and_the_untouched_pool_never_notices() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &format!("{}{}{}", pool("keep", QD), pool("gone", QD), pool("change", QD)));
    let host = Host::start(&cfg, free_port());
    let pid = host.pid();
    for p in ["keep", "gone", "change"] {
        let (s, b) = host.post(&format!("/pools/{p}/metrics"), Some("t"), r#"{"name":"queue_depth","value":30}"#);
        assert_eq!(s, 200, "{b}");
    }
    // queue-depth wants 3 of each; the change pool's action starts its cooldown.
    host.wait_for("three members each", Duration::from_secs(15), |h| {
        ["keep", "gone", "change"].iter().all(|p| h.get(&format!("/pools/{p}"))["desired"] == 3).then_some(())
    });
    assert_eq!(host.get("/config")["generation"], 1);
    let before = host.get("/pools/change");
    let counted = before["decisions"].as_u64().unwrap();

    rewrite(&cfg, &format!("{}{}{}", pool("keep", QD), pool("change", &format!(r#"{{ policy = "one" }}, {QD}"#)).replace("interval_ms", "consensus = \"lowest\"\ninterval_ms"), pool("new", QD)));
    let (status, outcome) = host.post("/config/reload", Some("t"), "");
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["added"], serde_json::json!(["new"]), "{outcome}");
    assert_eq!(outcome["removed"], serde_json::json!(["gone"]), "{outcome}");
    assert_eq!(outcome["reconfigured"], serde_json::json!(["change"]), "{outcome}");
    assert_eq!(outcome["restarted"], serde_json::json!([]), "{outcome}");
    assert_eq!(host.pid(), pid, "no restart");

    // The removed pool is gone from the API; the new one decides.
    let pools: Vec<String> = host.get("/pools").as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(pools, ["change", "keep", "new"]);
    host.post("/pools/new/metrics", Some("t"), r#"{"name":"queue_depth","value":50}"#);
    host.wait_for("the new pool's decision", Duration::from_secs(10), |h| (h.get("/pools/new")["desired"] == 5).then_some(()));
    // The changed pool votes with both strategies now (and `lowest` picks
    // `one`'s 1), keeps counting its decisions (it was not
    // restarted), and keeps its guard memory: the scale-down cooldown from
    // its scale-up holds it at 3.
    let last = host.wait_for("a decision with both strategies", Duration::from_secs(10), |h| {
        decisions(h, "change").into_iter().rev().find(|d| d["votes"].as_array().is_some_and(|v| v.len() == 2))
    });
    assert_eq!((last["votes"][0]["expert"].as_str(), last["proposed"].as_u64(), last["desired"].as_u64()), (Some("one"), Some(1), Some(3)), "{last}");
    assert_eq!(last["clamps"][0]["guardrail"], "scale_down_cooldown", "{last}");
    let after = host.get("/pools/change");
    assert!(after["decisions"].as_u64().unwrap() > counted, "the pool kept its counters: {after}");
    assert_eq!(after["running"].as_u64().unwrap() + after["booting"].as_u64().unwrap(), 3, "{after}");

    // By SIGHUP: take `one` away again.
    rewrite(&cfg, &format!("{}{}{}", pool("keep", QD), pool("change", QD), pool("new", QD)));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(host.pid() as i32, libc::SIGHUP) };
    host.wait_for("the SIGHUP reload", Duration::from_secs(10), |h| (h.get("/config")["generation"] == 3).then_some(()));
    host.wait_for("one vote again", Duration::from_secs(10), |h| {
        decisions(h, "change").last().filter(|d| d["votes"].as_array().is_some_and(|v| v.len() == 1)).map(|_| ())
    });

    // By the file alone: a fourth pool.
    rewrite(&cfg, &format!("{}{}{}{}", pool("keep", QD), pool("change", QD), pool("new", QD), pool("fourth", QD)));
    host.wait_for("the file's reload", Duration::from_secs(10), |h| (h.get("/config")["generation"] == 4).then_some(()));
    assert_eq!(host.get("/pools/fourth")["id"], "fourth");

    // Across all of it (and a few seconds more), the untouched pool ticked
    // on time with consecutive decisions.
    host.wait_for("the untouched pool's 30th decision", Duration::from_secs(20), |h| (h.get("/pools/keep")["decisions"].as_u64()? >= 30).then_some(()));
    let keep = decisions(&host, "keep");
    assert!(keep.len() > 20, "{} decisions: {}", keep.len(), host.get("/pools/keep"));
    continuous(&keep, 200 * 3).unwrap();
    let lag = host.get("/pools/keep")["tick_lag_p99_ms"].as_f64().unwrap();
    println!("keep: {} decisions, continuous across 3 reloads; tick lag p99 {lag:.1} ms", keep.len());
    assert!(lag < 200.0, "{lag}");
    // Three reloads changed something; the file watcher's own look at a
    // file the API had already applied counts as applied, changing nothing.
    assert_eq!(metric(&host, "scalewise_config_generation"), Some(4.0));
    assert!(metric(&host, "scalewise_config_reloads_total{outcome=\"applied\"}").unwrap() >= 3.0);
    assert_eq!(metric(&host, "scalewise_config_reloads_total{outcome=\"refused\"}"), Some(0.0));
}

/// A bad reload is refused whole: every problem named with its field, the
/// running config goes on untouched, and the refusal is in the API, the
/// metric and the answer. A storm of changes settles on the last one.
#[test]
fn a_bad_reload_is_refused_whole_and_a_storm_settles_on_the_last_file() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &pool("keep", QD));
    let host = Host::start(&cfg, free_port());
    let good = std::fs::read_to_string(&cfg).unwrap();

    let cases: [(&str, String, &str); 4] = [
        ("unknown policy", format!("{}{}", pool("keep", QD), pool("x", r#"{ policy = "nope" }"#)), "pools[1].strategies[0].policy: no policy file defines `nope`"),
        ("bad TOML", "[[pools]\nid =".to_owned(), "scalewise.toml"),
        ("restart-only field", pool("keep", QD), "journal: changed, but it takes effect only when the host starts"),
        ("wrong type", pool("keep", QD).replace("max = 6", "max = \"six\""), "pools[0].max"),
    ];
    for (what, pools, expect) in cases {
        match what {
            "bad TOML" => std::fs::write(&cfg, &pools).unwrap(),
            "restart-only field" => std::fs::write(&cfg, good.replace("journal.redb", "elsewhere.redb")).unwrap(),
            _ => rewrite(&cfg, &pools),
        }
        let (status, outcome) = host.post("/config/reload", Some("t"), "");
        assert_eq!(status, 422, "{what}: {outcome}");
        assert!(outcome["problems"].to_string().contains(expect), "{what}: {outcome}");
        assert_eq!(outcome["applied"], false);
        let pools: Vec<Value> = host.get("/pools").as_array().unwrap().clone();
        assert_eq!(pools.len(), 1, "{what}: the running config goes on");
        let status = host.get("/config");
        assert_eq!((status["generation"].as_u64(), status["last"]["applied"].as_bool()), (Some(1), Some(false)), "{status}");
        assert_eq!(metric(&host, "scalewise_config_last_reload_ok"), Some(0.0));
    }
    assert!(metric(&host, "scalewise_config_reloads_total{outcome=\"refused\"}").unwrap() >= 4.0);
    let (status, _) = host.post("/config/reload", None, "");
    assert_eq!(status, 401, "a reload needs the token");

    // A storm: fifty writes in about a second, each a different max; the
    // file watcher settles on the last.
    std::fs::write(&cfg, &good).unwrap();
    for i in 0..50 {
        rewrite(&cfg, &pool("keep", QD).replace("max = 6", &format!("max = {}", 10 + i)));
        std::thread::sleep(Duration::from_millis(20));
    }
    host.wait_for("the last file to run", Duration::from_secs(15), |h| (h.get("/pools/keep")["max"] == 59).then_some(()));
    let status = host.get("/config");
    println!("storm of 50 writes: {} reloads applied, {} refused", status["applied"], status["refused"]);
    assert!(status["applied"].as_u64().unwrap() < 50, "the storm was coalesced: {status}");
    continuous(&decisions(&host, "keep"), 200 * 3).unwrap();
}

/// A reload that removes a pool while its action is between the journalled
/// intent and the call to its target: the reload waits for the decision in
/// hand, the action is completed and its outcome journalled, the removal is
/// recorded after it, and the other pool misses no tick meanwhile.
#[test]
fn a_reload_removing_a_pool_mid_action_lets_the_action_finish_and_records_both() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup(dir.path(), &format!("{}{}", pool("keep", QD), pool("gone", QD)));
    let mut host = Host::start_with(&cfg, free_port(), &[("SCALEWISE_FAILPOINT_ACT_DELAY_MS", "1500")]);
    // Past each pool's first action (to its minimum), which the failpoint holds too.
    host.wait_for("both pools at their minimum", Duration::from_secs(15), |h| {
        ["keep", "gone"].iter().all(|p| h.get(&format!("/pools/{p}"))["running"] == 1).then_some(())
    });
    let since = host.get("/pools/keep")["decisions"].as_u64().unwrap();
    let (s, b) = host.post("/pools/gone/metrics", Some("t"), r#"{"name":"queue_depth","value":30}"#);
    assert_eq!(s, 200, "{b}");
    host.wait_for("gone's action in flight", Duration::from_secs(10), |h| {
        let newest = h.get("/pools/gone/decisions?limit=1");
        (newest[0]["action"]["outcome"]["status"] == "pending").then_some(())
    });
    rewrite(&cfg, &pool("keep", QD));
    let (status, outcome) = host.post("/config/reload", Some("t"), "");
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["removed"], serde_json::json!(["gone"]), "{outcome}");
    assert_eq!(host.get("/pools").as_array().unwrap().len(), 1);
    std::thread::sleep(Duration::from_millis(600));
    let kept: Vec<Value> = decisions(&host, "keep").into_iter().filter(|d| d["seq"].as_u64() > Some(since)).collect();
    assert!(kept.len() >= 8, "{kept:?}");
    continuous(&kept, 200 * 3).unwrap();
    host.terminate();

    let export = scalewise(&["journal", "--journal", dir.path().join("journal.redb").to_str().unwrap(), "export", "--pool", "gone"]);
    let records: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let acted = records.iter().rev().find(|r| r["action"].is_object()).expect("gone's action is journalled");
    assert_eq!(acted["action"]["outcome"]["status"], "done", "the action in hand finished: {acted}");
    assert_eq!(acted["action"]["to"], 3);
    let last = records.last().unwrap();
    assert!(last["lifecycle"].as_str().unwrap_or("").contains("removed from the config"), "the removal is the pool's last record: {last}");
    assert!(last["seq"].as_u64() > acted["seq"].as_u64());
}

/// A promotion holds across a restart of the host (the journal keeps it),
/// and a rollback after the restart returns to the file's set; a config
/// edited meanwhile to serve another set supersedes it.
#[test]
fn a_promotion_holds_across_a_restart_until_rolled_back_or_superseded() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let with = |serving: &str| pool("keep", &format!(r#"{{ policy = "{serving}" }}"#)).replace("interval_ms = 200", "interval_ms = 200\ncandidate = { strategies = [{ policy = \"two\" }] }");
    let cfg = setup(dir.path(), &with("one"));
    std::fs::write(dir.path().join("policies.d/two.rhai"), r#"fn strategy(input) { #{ desired: 2, reason: "two" } }"#).unwrap();
    std::fs::write(dir.path().join("policies.d/four.rhai"), r#"fn strategy(input) { #{ desired: 4, reason: "four" } }"#).unwrap();
    let mut host = Host::start(&cfg, free_port());
    // Which set decides: the newest policy decision's voter (the scale-down
    // cooldown may hold the capacity itself).
    let desired = |h: &Host, want: u64, what: &str| {
        let name = ["", "one", "two", "", "four"][want as usize];
        h.wait_for(what, Duration::from_secs(15), |h| {
            let d = h.get("/pools/keep/decisions?limit=5");
            let newest = d.as_array()?.iter().find(|r| r["votes"].as_array().is_some_and(|v| !v.is_empty()))?.clone();
            (newest["votes"][0]["expert"] == name).then_some(())
        })
    };
    desired(&host, 1, "the file's set");
    let (status, body) = host.post("/pools/keep/promote", Some("t"), "");
    assert_eq!(status, 200, "{body}");
    desired(&host, 2, "the promoted set");
    let promoted_at = host.wait_for("the promotion's record", Duration::from_secs(5), |h| {
        h.get("/pools/keep/decisions?limit=50").as_array()?.iter().find(|r| r["lifecycle"].as_str().is_some_and(|l| l.starts_with("promoted")))?["seq"].as_u64()
    });
    std::thread::sleep(Duration::from_millis(600));
    host.terminate();
    // A replay of what followed the promotion serves the promoted set, as the pool did.
    let out = std::process::Command::new(scalewise_e2e::scalewise_bin())
        .args(["simulate", "--from-journal", dir.path().join("journal.redb").to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--json", "--from-seq", &promoted_at.to_string(), "--out"])
        .arg(dir.path().join("replay"))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let s = &r["summary"];
    assert!(s["replayed"].as_u64().unwrap() >= 2 && s["reproduced"] == s["replayed"], "{s}");

    host.restart();
    desired(&host, 2, "the promoted set after the restart");
    let p = host.get("/pools/keep");
    assert_eq!(p["previous"], "strategies [one]", "a rollback target after the restart: {p}");
    assert!(p["candidate"].is_null(), "the promoted set is not its own candidate: {p}");
    let (status, body) = host.post("/pools/keep/rollback", Some("t"), "");
    assert_eq!(status, 200, "{body}");
    desired(&host, 1, "the file's set after the rollback");
    host.terminate();
    host.restart();
    desired(&host, 1, "the file's set, still, after a restart");

    // Promoted again, then the file moves on while the host is down.
    host.post("/pools/keep/promote", Some("t"), "");
    desired(&host, 2, "the promoted set");
    host.terminate();
    rewrite(&cfg, &with("four"));
    host.restart();
    desired(&host, 4, "the file's new set");
    assert!(host.get("/pools/keep")["previous"].is_null());
}

/// Run `scalewise` with `args`; its stdout, or a panic with its stderr.
fn scalewise(args: &[&str]) -> String {
    let out = std::process::Command::new(scalewise_e2e::scalewise_bin()).args(args).output().unwrap();
    assert!(out.status.success(), "scalewise {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Point the pool at `strategy` and give the config `remote` (TOML lines
/// under `[policies.remote.*]` and the trusted keys).
fn remote_config(cfg: &Path, strategy: &str, remote: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let (head, _) = text.split_once("\n[[pools]]").unwrap();
    let head = head.split("\n# remote\n").next().unwrap();
    let pools = pool("keep", &format!(r#"{{ policy = "{strategy}" }}"#));
    let tmp = cfg.with_extension("new");
    std::fs::write(&tmp, format!("{head}\n# remote\n{remote}\n{pools}")).unwrap();
    std::fs::rename(&tmp, cfg).unwrap();
}

/// Acceptance: a policy built, signed, pushed to a real registry, named by
/// digest in a running host's config and reloaded, serves with no restart
/// and no missed tick; a tampered blob, an unsigned artifact, one signed by
/// an unknown key and a bare tag are refused with a clear error, and the
/// last good version serves on.
#[test]
fn a_signed_policy_from_a_real_registry_serves_by_digest_and_tampered_or_wrongly_signed_ones_are_refused() {
    let _one = one_at_a_time();
    let registry = scalewise_e2e::registry::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (trusted, secret) = scalewise_e2e::registry::minisign_keys(&keys, "team");
    let (_, stranger) = scalewise_e2e::registry::minisign_keys(&keys, "stranger");
    let cfg = setup(dir.path(), &pool("keep", QD));
    let host = Host::start(&cfg, free_port());
    let pid = host.pid();
    host.post("/pools/keep/metrics", Some("t"), r#"{"name":"queue_depth","value":30}"#);

    // Build (the built-in queue-depth, as its crate builds), sign, push.
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let wasm = artifacts.join("fast.wasm");
    std::fs::copy(scalewise_e2e::builtin("queue-depth"), &wasm).unwrap();
    let sig = scalewise_e2e::registry::minisign(&wasm, &secret);
    let repo = format!("oci://{}/policies/fast", registry.addr);
    let pinned = scalewise(&["policy", "push", wasm.to_str().unwrap(), &format!("{repo}:1"), "--signature", sig.to_str().unwrap()]);
    assert!(pinned.starts_with(&format!("{repo}:1@sha256:")), "{pinned}");
    let remote = |source: &str| format!("[policies.remote.fast]\nsource = \"{source}\"\n[policies.settings.fast]\ntarget_per_worker = 10\n");
    // trusted_keys belongs to [policies]: written into the head once.
    let text = std::fs::read_to_string(&cfg).unwrap().replace("cache_dir = \"cache\"\n", &format!("cache_dir = \"cache\"\ntrusted_keys = [\"{trusted}\"]\n"));
    std::fs::write(&cfg, text).unwrap();
    remote_config(&cfg, "fast", &remote(&pinned));
    let (status, outcome) = host.post("/config/reload", Some("t"), "");
    assert_eq!(status, 200, "{outcome}");
    let digest = pinned.rsplit_once('@').unwrap().1;
    assert_eq!(outcome["remote"]["fast"], digest, "{outcome}");
    let served = host.wait_for("the pushed policy's vote", Duration::from_secs(10), |h| {
        decisions(h, "keep").into_iter().rev().find(|d| d["votes"][0]["expert"] == "fast" && d["votes"][0]["proposal"]["desired"].as_f64() == Some(3.0))
    });
    let version = served["votes"][0]["version"].clone();
    assert_eq!(host.pid(), pid, "no restart");

    // Each bad artifact is refused whole, with what was wrong, and `fast`
    // keeps serving the version it served.
    let script = artifacts.join("fast.rhai");
    std::fs::write(&script, r#"fn strategy(input) { #{ desired: 6, reason: "six" } }"#).unwrap();
    // Its own bytes (blobs are shared by digest): the one to tamper with.
    let victim = artifacts.join("victim.rhai");
    std::fs::write(&victim, r#"fn strategy(input) { #{ desired: 5, reason: "five" } }"#).unwrap();
    let signed = scalewise_e2e::registry::minisign(&victim, &secret);
    let tampered = scalewise(&["policy", "push", victim.to_str().unwrap(), &format!("{repo}:tampered"), "--signature", signed.to_str().unwrap()]);
    let manifest = registry.manifest("policies/fast", tampered.rsplit_once('@').unwrap().1);
    let layer = manifest["layers"].as_array().unwrap().iter().find(|l| l["mediaType"] == "application/vnd.scalewise.policy.rhai").unwrap();
    std::fs::write(registry.blob_path(layer["digest"].as_str().unwrap()), r#"fn strategy(input) { #{ desired: 9, reason: "evil" } }"#).unwrap();
    let unsigned = scalewise(&["policy", "push", script.to_str().unwrap(), &format!("{repo}:unsigned")]);
    let by_stranger = scalewise_e2e::registry::minisign(&script, &stranger);
    let strange = scalewise(&["policy", "push", script.to_str().unwrap(), &format!("{repo}:stranger"), "--signature", by_stranger.to_str().unwrap()]);
    let wrong_digest = format!("{repo}:1@sha256:{}", "0".repeat(64));
    let cases = [
        (tampered.as_str(), "tampered"),
        (unsigned.as_str(), "unsigned, and policies.trusted_keys requires a signature"),
        (strange.as_str(), "signed by a key that is not in policies.trusted_keys"),
        (wrong_digest.as_str(), "policies.remote.fast"),
        (&format!("{repo}:1"), "names no digest"),
    ];
    for (source, expect) in cases {
        remote_config(&cfg, "fast", &remote(source));
        let (status, outcome) = host.post("/config/reload", Some("t"), "");
        assert_eq!(status, 422, "{source}: {outcome}");
        assert!(outcome["problems"].to_string().contains(expect), "{source}: wanted `{expect}` in {outcome}");
        let last = decisions(&host, "keep").pop().unwrap();
        assert_eq!((&last["votes"][0]["expert"], &last["votes"][0]["version"]), (&serde_json::json!("fast"), &version), "{source}: the last good version serves on: {last}");
    }

    // A changed version as a candidate: pushed, pinned, in shadow beside
    // `fast` on every tick, never acting; its divergence in the API.
    let changed = artifacts.join("fast2.rhai");
    std::fs::write(&changed, r#"fn strategy(input) { #{ desired: 5, reason: "five, the new way" } }"#).unwrap();
    let changed_sig = scalewise_e2e::registry::minisign(&changed, &secret);
    let pinned2 = scalewise(&["policy", "push", changed.to_str().unwrap(), &format!("{repo}:2"), "--signature", changed_sig.to_str().unwrap()]);
    let with_candidate = format!("{}[policies.remote.fast2]\nsource = \"{pinned2}\"\n", remote(&pinned));
    remote_config(&cfg, "fast", &with_candidate);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("interval_ms = 200", "interval_ms = 200\ncandidate = { strategies = [{ policy = \"fast2\" }] }");
    std::fs::write(&cfg, text).unwrap();
    let (status, outcome) = host.post("/config/reload", Some("t"), "");
    assert_eq!(status, 200, "{outcome}");
    let divergence = host.wait_for("the candidate's divergence", Duration::from_secs(10), |h| {
        let c = h.get("/pools/keep")["candidate"].clone();
        (c["ticks"].as_u64()? >= 5).then_some(c)
    });
    let n = |k: &str| divergence[k].as_i64().unwrap();
    assert_eq!((n("differed"), n("higher"), n("lower"), n("last_diff"), n("max_abs_diff")), (n("ticks"), n("ticks"), 0, 2, 2), "{divergence}");
    let last = decisions(&host, "keep").pop().unwrap();
    assert_eq!((last["desired"].as_u64(), last["shadow"]["desired"].as_u64(), last["votes"][0]["expert"].as_str()), (Some(3), Some(5), Some("fast")), "in shadow, never acting: {last}");
    assert_eq!(host.get("/pools/keep")["running"], 3);

    // Promote: between two ticks, the candidate serves and acts.
    let (status, body) = host.post("/pools/keep/rollback", Some("t"), "");
    assert_eq!(status, 422, "nothing to roll back to yet: {body}");
    assert!(body["error"].as_str().unwrap().contains("no previous version"), "{body}");
    let (status, body) = host.post("/pools/keep/promote", Some("t"), "");
    assert_eq!(status, 200, "{body}");
    assert!(body["changed"].as_str().unwrap().contains("promoted the candidate strategies [fast2]"), "{body}");
    host.wait_for("the promoted set to act", Duration::from_secs(10), |h| (h.get("/pools/keep")["desired"] == 5).then_some(()));
    let p = host.get("/pools/keep");
    assert_eq!((p["candidate"].is_null(), p["previous"].as_str()), (true, Some("strategies [fast]")), "{p}");
    // Roll back: the exact previous set serves again; the demoted one shadows.
    let (status, body) = host.post("/pools/keep/rollback", Some("t"), "");
    assert_eq!(status, 200, "{body}");
    let back = host.wait_for("the previous set's vote", Duration::from_secs(10), |h| {
        decisions(h, "keep").pop().filter(|d| d["votes"][0]["expert"] == "fast" && d["shadow"]["votes"][0]["expert"] == "fast2")
    });
    assert_eq!(back["votes"][0]["version"], version, "the exact version that served before: {back}");
    // Each step is in the journal, as a record of its own.
    let all: Vec<String> = decisions(&host, "keep").iter().filter_map(|d| d["lifecycle"].as_str().map(str::to_owned)).collect();
    assert!(all.iter().any(|s| s.starts_with("reconfigured by a config reload: strategies [queue-depth] -> strategies [fast]")), "the reloads too: {all:?}");
    let steps: Vec<&String> = all.iter().filter(|s| !s.starts_with("reconfigured")).collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].starts_with("promoted") && steps[1].starts_with("rolled back"), "{steps:?}");
    let journalled = reqwest::blocking::get(format!("{}/pools/keep/decisions?limit=1000", host.base)).unwrap().text().unwrap();
    assert!(journalled.contains("\"lifecycle\":\"promoted"), "journalled");

    // The registry down: the pinned, cached version reloads without it;
    // a version not yet fetched is refused, naming the registry.
    let mut registry = registry;
    registry.stop();
    remote_config(&cfg, "fast", &remote(&pinned));
    let (status, outcome) = host.post("/config/reload", Some("t"), "");
    assert_eq!(status, 200, "the cached pin needs no registry: {outcome}");
    remote_config(&cfg, "fast", &remote(&unsigned.replace(":unsigned@", ":x@")));
    let (status, outcome) = host.post("/config/reload", Some("t"), "");
    assert_eq!(status, 422, "{outcome}");
    println!("registry down: {}", outcome["problems"][0]);
    continuous(&decisions(&host, "keep"), 200 * 3).unwrap();
    println!("tick lag p99 {} ms across pushes and reloads", host.get("/pools/keep")["tick_lag_p99_ms"]);
}

/// `scalewise ctl` against a live host, as an operator drives it: each
/// command does what the API does, errors are the host's own, and a
/// promotion racing a reload that brings a new candidate promotes one whole
/// set, never a mix.
#[test]
fn the_cli_client_drives_a_running_host_and_a_promotion_racing_a_new_candidate_stays_whole() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let with = |candidate: &str| pool("keep", r#"{ policy = "one" }"#).replace("interval_ms = 200", &format!("interval_ms = 200\ncandidate = {{ strategies = [{{ policy = \"{candidate}\" }}] }}"));
    let cfg = setup(dir.path(), &with("two"));
    std::fs::write(dir.path().join("policies.d/two.rhai"), r#"fn strategy(input) { #{ desired: 2, reason: "two" } }"#).unwrap();
    std::fs::write(dir.path().join("policies.d/four.rhai"), r#"fn strategy(input) { #{ desired: 4, reason: "four" } }"#).unwrap();
    // The two scripts were written after the config's policies: reload so the check sees them.
    let host = Host::start(&cfg, free_port());
    let ctl = |args: &[&str]| -> (bool, String) {
        let out = std::process::Command::new(scalewise_e2e::scalewise_bin())
            .arg("ctl")
            .args(args)
            .env("SCALEWISE_URL", &host.base)
            .env("SCALEWISE_TOKEN", "t")
            .output()
            .unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    host.wait_for("the candidate's first tick", Duration::from_secs(10), |h| (h.get("/pools/keep")["candidate"]["ticks"].as_u64()? > 2).then_some(()));
    let (ok, table) = ctl(&["pools"]);
    assert!(ok && table.contains("keep") && table.contains("strategies [two]"), "{table}");
    let (ok, json) = ctl(&["pool", "keep", "--json"]);
    assert!(ok && serde_json::from_str::<Value>(&json).unwrap()["id"] == "keep", "{json}");

    // Without a token, refused with the host's reason; a rollback with
    // nothing promoted, refused by the host.
    let out = std::process::Command::new(scalewise_e2e::scalewise_bin()).args(["ctl", "--url", &host.base, "pause", "keep"]).env_remove("SCALEWISE_TOKEN").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("pass --token"), "{out:?}");
    let (ok, said) = ctl(&["rollback", "keep"]);
    assert!(!ok && said.contains("422") && said.contains("no previous version"), "{said}");

    // The race: a reload bringing candidate `four` and a promotion, at once.
    rewrite(&cfg, &with("four"));
    let promote = std::thread::spawn({
        let base = host.base.clone();
        move || {
            let out = std::process::Command::new(scalewise_e2e::scalewise_bin()).args(["ctl", "--url", &base, "--token", "t", "promote", "keep"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    });
    let (ok, said) = ctl(&["reload"]);
    assert!(ok, "{said}");
    let promoted = promote.join().unwrap();
    // Whichever came first, one whole set serves: `two` (promoted before
    // the reload, which then brought `four` in as the candidate again) or
    // `four` (the reload first).
    let serving = host.wait_for("a decision on the promoted set", Duration::from_secs(10), |h| {
        decisions(h, "keep").pop().and_then(|d| d["votes"][0]["expert"].as_str().map(str::to_owned)).filter(|e| e != "one")
    });
    assert!(promoted.contains(&format!("promoted the candidate strategies [{serving}]")), "{promoted} / serving {serving}");

    let (ok, said) = ctl(&["rollback", "keep"]);
    assert!(ok && said.contains("rolled back to strategies [one]"), "{said}");
    let (ok, said) = ctl(&["scale", "keep", "2", "--hold-secs", "30", "--reason", "cli test"]);
    assert!(ok, "{said}");
    assert_eq!(host.get("/pools/keep")["hold"]["target"], 2);
    assert!(ctl(&["pause", "keep"]).0 && host.get("/pools/keep")["paused"] == true);
    assert!(ctl(&["resume", "keep"]).0 && host.get("/pools/keep")["paused"] == false);
    let (ok, explained) = ctl(&["decisions", "keep", "-n", "200"]);
    assert!(ok && explained.contains("lifecycle: promoted") && explained.contains("lifecycle: rolled back") && explained.contains("by manual (cli test)"), "{explained}");
    let (ok, policies) = ctl(&["policies"]);
    assert!(ok && policies.contains("two") && policies.contains("serving"), "{policies}");
}

/// With `guardrails.rollback_after_faults`, a promoted set that faults on
/// that many live ticks running is rolled back by the pool itself, as a
/// record of its own that says why.
#[test]
fn a_promoted_set_that_keeps_faulting_is_rolled_back_by_itself() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let keep = pool("keep", r#"{ policy = "one" }"#)
        .replace("interval_ms = 200", "interval_ms = 200\ncandidate = { strategies = [{ policy = \"flaky\" }] }")
        .replace("scale_down_limits = [] }", "scale_down_limits = [], rollback_after_faults = 3 }");
    let cfg = setup(dir.path(), &keep);
    // Passes the load's smoke call; answers nonsense on this pool's real
    // input (a fault; a `throw` would be a decline, which is not).
    std::fs::write(dir.path().join("policies.d/flaky.rhai"), r#"fn strategy(input) { if input.pool.id == "keep" { return #{ desired: -7.0, reason: "nonsense" } } #{ desired: 2, reason: "two" } }"#).unwrap();
    let host = Host::start(&cfg, free_port());
    host.wait_for("the candidate in shadow", Duration::from_secs(10), |h| (h.get("/pools/keep")["candidate"]["ticks"].as_u64()? > 1).then_some(()));
    let (status, body) = host.post("/pools/keep/promote", Some("t"), "");
    assert_eq!(status, 200, "{body}");
    let note = host.wait_for("the automatic rollback", Duration::from_secs(10), |h| {
        decisions(h, "keep").into_iter().rev().find_map(|d| d["lifecycle"].as_str().filter(|l| l.starts_with("rolled back")).map(str::to_owned))
    });
    assert!(note.contains("automatic rollback: the promoted set faulted on 3 ticks running") && note.contains("invalid output"), "{note}");
    let p = host.get("/pools/keep");
    assert_eq!((p["previous"].is_null(), p["candidate"]["candidate"].as_str()), (true, Some("strategies [flaky]")), "{p}");
    let faulted = decisions(&host, "keep").iter().filter(|d| d["votes"][0]["expert"] == "flaky").count();
    assert_eq!(faulted, 3, "exactly three faulted ticks served before the rollback");
}
