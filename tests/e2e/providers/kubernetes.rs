//! Two host replicas against the Kubernetes stand-in: leader election on a
//! Lease, scale patches from the leader only, hand-over on SIGKILL (within
//! the lease duration) and on SIGTERM (the lease is released), a stolen
//! lease, a paused and a deleted workload; Events on the workload for each
//! action and (once) for each refusal, and a failing events endpoint that
//! changes nothing else.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scalewise_e2e::host::{Host, IMMEDIATE, free_port, queue_depth_config};
use scalewise_e2e::kube_standin::KubeStandIn;
use scalewise_providers::targets::kubernetes::{API_USE, PAUSE_ANNOTATION};

const LEASE_SECS: f64 = 3.0;

/// Pool `web` on the workload the stand-in at `url` serves, described by
/// `provider` (its fields beyond kind and cluster_url), with `leader` (a
/// `[leader_election]` section, or nothing) before it.
fn pool_config(dir: &Path, url: &str, provider: &str, leader: &str) -> PathBuf {
    queue_depth_config(
        dir,
        "t",
        &format!(
            r#"
{leader}
[[pools]]
id = "web"
min = 1
max = 20
interval_ms = 250
strategies = [{{ policy = "queue-depth" }}]
provider = {{ kind = "kubernetes", {provider}, cluster_url = "{url}" }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 1 }}]
{IMMEDIATE}
"#
        ),
    )
}

/// A leader-elected replica named `identity` scaling Deployment default/web.
fn config(dir: &Path, url: &str, identity: &str) -> PathBuf {
    let leader = format!(
        "[leader_election]\ncluster_url = \"{url}\"\nnamespace = \"default\"\nidentity = \"{identity}\"\n\
         lease_duration_secs = {LEASE_SECS}\nrenew_deadline_secs = 2\nretry_period_secs = 0.5\n"
    );
    pool_config(dir, url, r#"name = "web", namespace = "default""#, &leader)
}

/// Pushes a changing queue depth to every host in `targets` until dropped,
/// so that each tick wants a different size (2..=6 members).
struct Load {
    stop: Arc<AtomicBool>,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, t) = (stop.clone(), targets.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
            let mut k = 0u64;
            while !s.load(Ordering::Relaxed) {
                let v = 10 * (2 + k % 5);
                for base in t.lock().unwrap().clone() {
                    let _ = client
                        .post(format!("{base}/pools/web/metrics"))
                        .bearer_auth("t")
                        .body(format!(r#"{{"name":"queue_depth","value":{v}}}"#))
                        .send();
                }
                k += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Load { stop, targets }
    }

    fn to(&self, hosts: &[&Host]) {
        *self.targets.lock().unwrap() = hosts.iter().map(|h| h.base.clone()).collect();
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn patches_by(k: &KubeStandIn, replica: &str) -> usize {
    k.with(|c| c.patches.iter().filter(|p| p.replica == replica).count())
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Instant {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Instant::now()
}

fn holder(k: &KubeStandIn) -> Option<String> {
    k.with(|c| c.lease.as_ref().and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned)).filter(|h| !h.is_empty()))
}

#[test]
fn two_replicas_one_acts_and_the_lease_hands_over() {
    let k = KubeStandIn::start(&["a", "b"], 1);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cfg_a, cfg_b) = (config(dir_a.path(), k.url("a"), "replica-a"), config(dir_b.path(), k.url("b"), "replica-b"));
    let load = Load::start();

    let mut a = Host::start(&cfg_a, free_port());
    wait_until("replica-a to take the lease", Duration::from_secs(10), || holder(&k).as_deref() == Some("replica-a"));
    let b = Host::start(&cfg_b, free_port());
    load.to(&[&a, &b]);
    wait_until("replica-a to patch the scale a few times", Duration::from_secs(20), || patches_by(&k, "a") >= 4);
    assert_eq!(patches_by(&k, "b"), 0, "the standby patched");
    let view = b.get("/leader");
    assert_eq!(view["leading"], false, "{view}");
    assert_eq!(view["holder"], "replica-a", "{view}");
    let standby = b.get("/pools/web/decisions?limit=20");
    assert!(standby.as_array().unwrap().iter().any(|d| d["mode"] == "standby"), "the standby decides and records it: {standby}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", a.base)).unwrap().text().unwrap();
    assert!(metrics.contains("scalewise_leader{identity=\"replica-a\"} 1"), "{metrics}");
    // Pod readiness and metrics.k8s.io usage reach the pool's members.
    let pool = a.get("/pools/web");
    let members = pool["members"]["members"].as_array().unwrap();
    assert!(members.iter().any(|m| m["state"] == "active" && m["cpu_percent"] == 25.0), "{pool}");

    // SIGKILL: nothing is released; replica-b must wait the lease out.
    let last_renewal = k.with(|c| c.requests.iter().rev().find(|r| r.replica == "a" && r.verb == "update").map(|r| r.at)).unwrap();
    let killed = Instant::now();
    a.kill9();
    let took_over = wait_until("replica-b to take over", Duration::from_secs(10), || holder(&k).as_deref() == Some("replica-b"));
    let handover = took_over - killed;
    let since_renewal = took_over - last_renewal;
    eprintln!("hand-over after SIGKILL: {handover:?} from the kill, {since_renewal:?} from replica-a's last renewal (lease {LEASE_SECS}s)");
    assert!(handover <= Duration::from_secs_f64(LEASE_SECS + 0.3), "hand-over took {handover:?}");
    assert!(since_renewal >= Duration::from_secs_f64(LEASE_SECS - 0.6), "taken over before the lease could expire: {since_renewal:?}");
    load.to(&[&b]);
    wait_until("replica-b to patch", Duration::from_secs(10), || patches_by(&k, "b") >= 2);

    // The pause annotation: replica-b keeps deciding, never patches.
    k.with(|c| c.annotations.insert(PAUSE_ANNOTATION.into(), "true".into()));
    std::thread::sleep(Duration::from_millis(400));
    let before = patches_by(&k, "b");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(patches_by(&k, "b"), before, "patched a paused workload");
    let pool = b.get("/pools/web");
    assert!(pool["last_error"].as_str().unwrap_or("").contains(PAUSE_ANNOTATION), "{pool}");
    k.with(|c| c.annotations.clear());
    wait_until("patches to resume", Duration::from_secs(10), || patches_by(&k, "b") > before);

    // A deleted workload: a clear error, the host keeps running.
    k.with(|c| c.deleted = true);
    let gone = b.wait_for("the deletion to be reported", Duration::from_secs(10), |h| {
        let p = h.get("/pools/web");
        p["last_error"].as_str().filter(|e| e.contains("does not exist")).map(str::to_owned)
    });
    assert!(gone.contains("Deployment default/web"), "{gone}");
    k.with(|c| c.deleted = false);

    // SIGTERM: replica-b releases the lease, replica-a (restarted) takes it at its next look.
    a.restart();
    load.to(&[&a, &b]);
    wait_until("replica-a to see replica-b lead", Duration::from_secs(10), || a.get("/leader")["holder"] == "replica-b");
    let mut b = b;
    let stopping = Instant::now();
    assert!(b.terminate().success());
    let took_over = wait_until("replica-a to take over after SIGTERM", Duration::from_secs(5), || holder(&k).as_deref() == Some("replica-a"));
    eprintln!("hand-over after SIGTERM: {:?}", took_over - stopping);
    assert!(took_over - stopping < Duration::from_secs_f64(LEASE_SECS), "a released lease should not be waited out");
    load.to(&[&a]);
    wait_until("replica-a to patch again", Duration::from_secs(10), || k.with(|c| c.patches.last().is_some_and(|p| p.replica == "a" && p.at > took_over)));

    // A stolen lease: replica-a stops before its next patch.
    let stolen = Instant::now();
    k.with(|c| c.steal_lease("intruder"));
    std::thread::sleep(Duration::from_millis(2500));
    let late: Vec<_> = k.with(|c| c.patches.iter().filter(|p| p.at > stolen + Duration::from_millis(50)).map(|p| p.replica.clone()).collect());
    assert!(late.is_empty(), "patched after the lease was stolen: {late:?}");
    assert_eq!(a.get("/leader")["leading"], false);
    drop(load);

    // Only the lease holder ever patched, and the patches never interleave.
    let (patches, requests) = k.with(|c| (c.patches.clone(), c.requests.clone()));
    for p in &patches {
        let expected = format!("replica-{}", p.replica);
        assert_eq!(p.lease_holder.as_deref(), Some(expected.as_str()), "{} patched while {:?} held the lease", p.replica, p.lease_holder);
    }
    let runs = patches.windows(2).filter(|w| w[0].replica != w[1].replica).count();
    assert_eq!(runs, 2, "patches switched replica more than the two hand-overs: {:?}", patches.iter().map(|p| &p.replica).collect::<Vec<_>>());
    // Every request is one RBAC grants, and the RBAC grants nothing unused.
    let mut used = std::collections::BTreeSet::new();
    for r in &requests {
        let allowed = API_USE.iter().any(|(g, res, verbs)| *g == r.group && *res == r.resource && verbs.contains(&r.verb.as_str()));
        assert!(allowed, "a request outside API_USE: {} {}/{}", r.verb, r.group, r.resource);
        used.insert((r.group.clone(), r.resource.clone(), r.verb.clone()));
    }
    for (g, res, verbs) in API_USE {
        for v in *verbs {
            assert!(used.contains(&(g.to_string(), res.to_string(), v.to_string())), "API_USE grants {v} {g}/{res}, never used");
        }
    }
    eprintln!("{} patches, {} requests to the stand-in", patches.len(), requests.len());
}

#[test]
fn a_custom_resource_with_a_scale_subresource_is_scaled_the_same_way() {
    let k = KubeStandIn::start(&["solo"], 1);
    k.with(|c| c.workload = ("example.com".into(), "workers".into()));
    let dir = tempfile::tempdir().unwrap();
    let url = k.url("solo").to_owned();
    let provider = r#"api_version = "example.com/v1", workload = "Worker", namespace = "default", name = "web""#;
    let cfg = pool_config(dir.path(), &url, provider, "");
    let h = Host::start(&cfg, free_port());
    h.wait_for("the custom resource to be scaled to 5", Duration::from_secs(20), |h| {
        let _ = h.post("/pools/web/metrics", Some("t"), r#"{"name":"queue_depth","value":50}"#);
        (k.with(|c| c.replicas) == 5).then_some(())
    });
    let paths: Vec<_> = k.with(|c| c.requests.iter().filter(|r| r.verb == "patch").map(|r| format!("{}/{}", r.group, r.resource)).collect());
    assert!(!paths.is_empty() && paths.iter().all(|p| p == "example.com/workers/scale"), "{paths:?}");
    assert_eq!(h.get("/leader"), serde_json::Value::Null, "no election without [leader_election]");
}

/// Pushes `queue_depth` = whatever it is set to, to one host, every 150 ms
/// until dropped (the pool's window is a second, so a value must keep coming).
struct Depth {
    value: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Depth {
    fn start(base: &str, value: u64) -> Depth {
        let (v, stop) = (Arc::new(std::sync::atomic::AtomicU64::new(value)), Arc::new(AtomicBool::new(false)));
        let (v2, s2, url) = (v.clone(), stop.clone(), format!("{base}/pools/web/metrics"));
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
            while !s2.load(Ordering::Relaxed) {
                let body = format!(r#"{{"name":"queue_depth","value":{}}}"#, v2.load(Ordering::Relaxed));
                let _ = client.post(&url).bearer_auth("t").body(body).send();
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        Depth { value: v, stop }
    }

    fn set(&self, value: u64) {
        self.value.store(value, Ordering::Relaxed);
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Pool `web` on Deployment default/web with `extra` lines in the pool and
/// `sections` before it.
fn events_config(dir: &Path, url: &str, extra: &str, sections: &str) -> PathBuf {
    let cfg = pool_config(dir, url, r#"name = "web", namespace = "default""#, sections);
    let text = std::fs::read_to_string(&cfg).unwrap().replace("interval_ms = 250", &format!("interval_ms = 250\n{extra}"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn decisions(h: &Host) -> u64 {
    h.get("/pools/web")["decisions"].as_u64().unwrap()
}

fn replicas(k: &KubeStandIn) -> i64 {
    k.with(|c| c.replicas)
}

/// The events with `reason` whose note starts with `from → to`.
fn events(k: &KubeStandIn, reason: &str, from_to: &str) -> Vec<serde_json::Value> {
    k.with(|c| c.events_with(reason)).into_iter().filter(|e| e["note"].as_str().unwrap_or("").starts_with(from_to)).collect()
}

/// Wait until at least `n` more decisions than now were made.
fn ticks(h: &Host, n: u64) {
    let start = decisions(h);
    h.wait_for("the pool to keep deciding", Duration::from_secs(10), |h| (decisions(h) >= start + n).then_some(()));
}

#[test]
fn scale_actions_and_a_cost_rule_denial_become_events_on_the_workload() {
    let k = KubeStandIn::start(&["solo"], 1);
    let dir = tempfile::tempdir().unwrap();
    // A member costs 1/h and budget-cap allows 3/h: 3 members, no more.
    let cfg = events_config(
        dir.path(),
        k.url("solo"),
        r#"cost_rules = ["budget-cap"]
cost = { kind = "m", catalog = [{ name = "m", on_demand_hourly = 1.0 }] }"#,
        "[policies.settings.budget-cap]\nmax_hourly = 3.0\n",
    );
    scalewise_e2e::host::install_builtins(&dir.path().join("policies.d"), &["budget-cap"]);
    let h = Host::start_with(&cfg, free_port(), &[("POD_NAME", "scalewise-7f9c-x2")]);
    let depth = Depth::start(&h.base, 30);

    // An action: 1 → 3, a Normal event regarding the Deployment.
    let up = h.wait_for("a ScaledUp event for 1 → 3", Duration::from_secs(20), |_| events(&k, "ScaledUp", "1 → 3").into_iter().next());
    assert_eq!(replicas(&k), 3);
    assert_eq!(up["type"], "Normal", "{up}");
    assert_eq!((up["apiVersion"].as_str(), up["kind"].as_str()), (Some("events.k8s.io/v1"), Some("Event")));
    assert_eq!(up["action"], "Scale");
    assert_eq!(up["reportingController"], "scalewise.io/scalewise");
    assert_eq!(up["reportingInstance"], "scalewise-7f9c-x2");
    let regarding = &up["regarding"];
    assert_eq!((regarding["apiVersion"].as_str(), regarding["kind"].as_str()), (Some("apps/v1"), Some("Deployment")), "{up}");
    assert_eq!((regarding["namespace"].as_str(), regarding["name"].as_str()), (Some("default"), Some("web")), "{up}");
    assert_eq!(regarding["uid"], "5c1e0b2a-0000-4000-8000-000000000001", "{up}");
    assert!(up["note"].as_str().unwrap().starts_with("1 → 3 by policy: "), "{up}");
    assert!(up["metadata"]["name"].as_str().unwrap().starts_with("web."), "{up}");

    // 80 queued wants 8, which costs 8/h: denied every tick, told once.
    depth.set(80);
    let refused = h.wait_for("a ScaleRefused event for 3 → 8", Duration::from_secs(20), |_| events(&k, "ScaleRefused", "3 → 8").into_iter().next());
    assert_eq!(refused["type"], "Warning", "{refused}");
    assert!(refused["note"].as_str().unwrap().contains("budget-cap (deny)"), "{refused}");
    let warnings = k.with(|c| c.events.iter().filter(|e| e["type"] == "Warning").count());
    ticks(&h, 8);
    let d = h.get("/pools/web/decisions?limit=1");
    assert_eq!(d[0]["cost"][0]["verdict"], "deny", "still denied: {d}");
    assert_eq!(events(&k, "ScaleRefused", "3 → 8").len(), 1, "one event for a lasting refusal, not one per tick");
    assert_eq!(k.with(|c| c.events.iter().filter(|e| e["type"] == "Warning").count()), warnings, "no more warnings while nothing changed");
    assert_eq!(replicas(&k), 3);

    // The events endpoint hangs past the host's timeout for an event (5 s),
    // then fails: the pool decides and acts as before, at its own pace.
    k.with(|c| {
        c.events_fail = Some(503);
        c.events_delay = Duration::from_secs(6);
    });
    depth.set(10);
    wait_until("the scale-down while events hang", Duration::from_secs(5), || replicas(&k) == 1);
    let down = Instant::now();
    depth.set(30);
    wait_until("the scale-up while events hang", Duration::from_secs(5), || replicas(&k) == 3);
    // Had the loop waited for the first event, this would take 5 s or more.
    assert!(down.elapsed() < Duration::from_secs(3), "acting waited on an event: {:?}", down.elapsed());
    ticks(&h, 4);
    assert!(h.get("/pools/web")["last_error"].is_null(), "an event is no pool error: {}", h.get("/pools/web"));
    // Answered at once now, with the 503: the next queued event gets it.
    k.with(|c| c.events_delay = Duration::ZERO);
    wait_until("a post answered 503", Duration::from_secs(10), || {
        k.with(|c| c.requests.iter().any(|r| r.group == "events.k8s.io" && r.status == 503))
    });
    assert!(events(&k, "ScaledDown", "3 → 1").is_empty(), "stored while failing?");

    // Back: the next action is recorded again (after what was queued).
    k.with(|c| {
        c.events_fail = None;
        c.events_delay = Duration::ZERO;
    });
    depth.set(20);
    h.wait_for("a ScaledDown event once events are taken again", Duration::from_secs(30), |_| events(&k, "ScaledDown", "3 → 2").into_iter().next());
    assert_eq!(events(&k, "ScaleRefused", "3 → 8").len(), 1);
}

#[test]
fn a_change_held_for_approval_is_one_warning_event_not_one_per_tick() {
    let k = KubeStandIn::start(&["solo"], 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = events_config(dir.path(), k.url("solo"), "approval_above = 2\napproval_ttl_secs = 60", "");
    let h = Host::start(&cfg, free_port());
    let _depth = Depth::start(&h.base, 80);

    let held = h.wait_for("an AwaitingApproval event", Duration::from_secs(20), |_| events(&k, "AwaitingApproval", "1 → 8").into_iter().next());
    assert_eq!(held["type"], "Warning", "{held}");
    assert!(held["note"].as_str().unwrap().contains("waits for an operator"), "{held}");
    ticks(&h, 8);
    assert_eq!(events(&k, "AwaitingApproval", "1 → 8").len(), 1, "one event while the approval stays pending");
    assert_eq!(replicas(&k), 1, "nothing happens before approval");

    // Each tick holds its own decision for approval; approve the one seen.
    h.wait_for("the approval to be taken", Duration::from_secs(10), |h| {
        let seq = h.get("/pools/web")["pending_approval"]["seq"].as_u64().expect("a pending approval");
        let (status, body) = h.post(&format!("/pools/web/approve/{seq}"), Some("t"), "");
        assert!(status == 200 || status == 422, "{status} {body}");
        (status == 200).then_some(())
    });
    let approved = h.wait_for("the approved change's event", Duration::from_secs(10), |_| events(&k, "ScaledUp", "1 → 8").into_iter().next());
    assert!(approved["note"].as_str().unwrap().starts_with("1 → 8 by approval: "), "{approved}");
    assert_eq!(replicas(&k), 8);
}
