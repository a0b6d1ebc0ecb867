//! A pool of EC2 instances against the moto server: scaled 0 → 10 → 3 → 0
//! by the control loop, directly and through a proxy that throttles, fails,
//! drops and loses answers; a host killed in the middle of a launch; a
//! quota hit half-way through a scale-up; credentials and endpoints that
//! are missing or wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalewise_e2e::aws::{FaultProxy, Moto};
use scalewise_e2e::host::{Host, IMMEDIATE, free_port, install_builtins, queue_depth_config};

const CREDS: [(&str, &str); 3] = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_EC2_METADATA_DISABLED", "true")];

/// Pool `api`: queue-depth at 10 per instance, 0..=10 instances at `endpoint`.
fn config(dir: &Path, endpoint: &str, extra: &str) -> PathBuf {
    queue_depth_config(
        dir,
        "t",
        &format!(
            r#"
[[pools]]
id = "api"
min = 0
max = 10
interval_ms = 300
strategies = [{{ policy = "queue-depth" }}]
provider = {{ kind = "aws-ec2", region = "us-east-1", endpoint_url = "{endpoint}", image_id = "ami-12c6146b", instance_type = "t3.micro", page_size = 5, max_attempts = 8 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 1 }}]
{IMMEDIATE}
{extra}
"#
        ),
    )
}

fn start(config: &Path) -> Host {
    Host::start_with(config, free_port(), &CREDS)
}

/// Push `depth` until the pool's capacity is `want`, then until moto shows
/// exactly `want` live instances of the pool.
fn drive_to(h: &Host, moto: &Moto, depth: f64, want: usize) {
    h.wait_for(&format!("the pool to hold {want}"), Duration::from_secs(60), |h| {
        let (s, b) = h.post("/pools/api/metrics", Some("t"), &format!(r#"{{"name":"queue_depth","value":{depth}}}"#));
        assert_eq!(s, 200, "{b}");
        let p = h.get("/pools/api");
        let cap = p["running"].as_u64().unwrap() + p["booting"].as_u64().unwrap();
        (cap == want as u64 && moto.live("api").len() == want).then_some(())
    });
}

/// 0 → 10 → 3 → 0; after each step exactly the expected tagged instances.
fn walk(h: &Host, moto: &Moto) {
    for (depth, want) in [(100.0, 10), (30.0, 3), (0.0, 0)] {
        drive_to(h, moto, depth, want);
        // Hold a moment: nothing more may launch or go.
        std::thread::sleep(Duration::from_millis(900));
        let live = moto.live("api");
        assert_eq!(live.len(), want, "after settling at {want}: {live:?}");
    }
}

#[test]
fn a_pool_scales_0_10_3_0_on_moto_directly_and_through_faults_without_duplicates() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let h = start(&config(dir.path(), &moto.url, ""));
    walk(&h, &moto);
    let launched = moto.instances("api").len();
    assert_eq!(launched, 10, "ten launched in all, none twice");
    drop(h);

    // The same walk through throttling, 500s, dropped connections, lost
    // answers and slow replies, on a fresh pool.
    let proxy = FaultProxy::start(&moto.url, &["--seed", "7", "--throttle", "0.12", "--error", "0.08", "--drop", "0.06", "--lost", "0.08", "--slow", "0.05", "--slow-ms", "700", "--lose-run", "1"]);
    let dir = tempfile::tempdir().unwrap();
    // The first walk's instances are terminated (moto keeps them listed):
    // count anew from here.
    let before = moto.instances("api").len();
    let h = start(&config(dir.path(), &proxy.url, ""));
    walk(&h, &moto);
    let stats = proxy.stats();
    eprintln!("through the proxy: {stats}");
    let faults = &stats["faults"];
    assert!(faults["lost"].as_u64().unwrap_or(0) > 0 && faults["throttle"].as_u64().unwrap_or(0) > 0, "the faults fired: {stats}");
    assert_eq!(faults["lost_run"], 1, "the launch's answer was lost: {stats}");
    assert_eq!(stats["run_instances_forwarded"], 1, "the retry found the launch by its tag and did not send it again: {stats}");
    let launched = moto.instances("api").len() - before;
    assert_eq!(launched, 10, "through faults: ten launched, no duplicates ({stats})");
}

#[test]
fn a_host_killed_during_a_launch_reconciles_without_launching_twice() {
    let moto = Moto::start();
    // RunInstances reaches moto, its answer is held 3 s: the host dies first.
    let proxy = FaultProxy::start(&moto.url, &["--hold-run-ms", "3000"]);
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(&config(dir.path(), &proxy.url, ""));
    h.wait_for("a launch to reach moto", Duration::from_secs(30), |h| {
        let _ = h.post("/pools/api/metrics", Some("t"), r#"{"name":"queue_depth","value":100}"#);
        (proxy.stats()["run_instances_forwarded"].as_u64().unwrap() >= 1).then_some(())
    });
    h.kill9();
    assert_eq!(moto.live("api").len(), 10, "the launch landed although the host never heard");
    h.restart();
    let p = h.wait_for("the restarted host to see the ten", Duration::from_secs(30), |h| {
        let p = h.get("/pools/api");
        (p["running"].as_u64().unwrap() + p["booting"].as_u64().unwrap() == 10).then_some(p)
    });
    for _ in 0..8 {
        let _ = h.post("/pools/api/metrics", Some("t"), r#"{"name":"queue_depth","value":100}"#);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(moto.instances("api").len(), 10, "nothing launched twice: {p}");
    assert_eq!(proxy.stats()["run_instances_forwarded"], 1, "one RunInstances in all");
}

#[test]
fn a_quota_hit_half_way_keeps_what_launched_and_stops_asking() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url, &["--quota", "4"]);
    let dir = tempfile::tempdir().unwrap();
    install_builtins(&dir.path().join("policies.d"), &["spot-mix"]);
    // spot-mix: 2 on demand, the rest spot: two launches, the second over quota.
    let extra = r#"cost_rules = ["spot-mix"]
cost = { kind = "t3.micro", catalog = [{ name = "t3.micro", on_demand_hourly = 0.0104, spot_hourly = 0.0031 }] }
[policies.settings.spot-mix]
on_demand_base = 2
spot_percent = 100
"#;
    let cfg = config(dir.path(), &proxy.url, extra);
    let h = start(&cfg);
    let p = h.wait_for("the quota error", Duration::from_secs(30), |h| {
        let _ = h.post("/pools/api/metrics", Some("t"), r#"{"name":"queue_depth","value":100}"#);
        let p = h.get("/pools/api");
        p["last_error"].as_str().filter(|e| e.contains("InstanceLimitExceeded")).map(|_| p.clone())
    });
    let error = p["last_error"].as_str().unwrap();
    assert!(error.contains("launched 2 of 10"), "{error}");
    assert!(error.contains("account quota"), "says what to do: {error}");
    let calls = proxy.stats()["run_instances_forwarded"].as_u64().unwrap();
    for _ in 0..10 {
        let _ = h.post("/pools/api/metrics", Some("t"), r#"{"name":"queue_depth","value":100}"#);
        std::thread::sleep(Duration::from_millis(300));
    }
    let quota_refusals = proxy.stats()["faults"]["quota"].as_u64().unwrap();
    assert_eq!(quota_refusals, 1, "asked again and again: {}", proxy.stats());
    assert_eq!(proxy.stats()["run_instances_forwarded"].as_u64().unwrap(), calls);
    let live = moto.live("api");
    assert_eq!(live.len(), 2, "what launched stays: {live:?}");
    assert!(live.iter().all(|i| !i.spot), "the on-demand base launched first: {live:?}");
    let decisions = h.get("/pools/api/decisions?limit=5");
    let limited = decisions.as_array().unwrap().iter().find(|d| !d["limited"].is_null()).unwrap_or_else(|| panic!("no limited decision: {decisions}"));
    assert!(limited["limited"]["why"].as_str().unwrap().contains("EC2 refused more instances"), "{limited}");
}

#[test]
fn an_instance_spec_the_api_rejects_is_reported_and_not_asked_again_every_tick() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url, &[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &proxy.url, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("page_size = 5", "page_size = 5, subnet_id = \"subnet-nope\"");
    std::fs::write(&cfg, text).unwrap();
    let h = start(&cfg);
    let e = h.wait_for("the rejection", Duration::from_secs(30), |h| {
        let _ = h.post("/pools/api/metrics", Some("t"), r#"{"name":"queue_depth","value":30}"#);
        h.get("/pools/api")["last_error"].as_str().map(str::to_owned)
    });
    assert!(e.contains("InvalidSubnetID.NotFound") && e.contains("fix the instance spec"), "{e}");
    // Not retried, and not asked again at every tick: scale-ups are held.
    for _ in 0..8 {
        let _ = h.post("/pools/api/metrics", Some("t"), r#"{"name":"queue_depth","value":30}"#);
        std::thread::sleep(Duration::from_millis(300));
    }
    let stats = proxy.stats();
    assert_eq!(stats["run_instances_forwarded"], 1, "{stats}");
    let decisions = h.get("/pools/api/decisions?limit=3");
    assert!(decisions[0]["limited"]["why"].as_str().is_some_and(|w| w.contains("InvalidSubnetID.NotFound")), "{decisions}");
    assert!(moto.live("api").is_empty());
}

#[test]
fn missing_credentials_and_a_dead_endpoint_are_reported_and_the_host_keeps_running() {
    // No credentials anywhere: the first call fails and says what to set.
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &moto.url, "");
    let empty = dir.path().join("nothing");
    let h = Host::start_with(
        &cfg,
        free_port(),
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_CONFIG_FILE", empty.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.to_str().unwrap()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let e = h.wait_for("the credentials error", Duration::from_secs(30), |h| h.get("/pools/api")["last_error"].as_str().map(str::to_owned));
    assert!(e.contains("NoCredentials") && e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
    drop(h);

    // An endpoint where nothing listens: reported, retried, the host stays up.
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let h = start(&config(dir.path(), &dead, ""));
    let e = h.wait_for("the unreachable error", Duration::from_secs(60), |h| h.get("/pools/api")["last_error"].as_str().map(str::to_owned));
    assert!(e.contains("Unreachable") && e.contains("endpoint_url"), "{e}");
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
}
