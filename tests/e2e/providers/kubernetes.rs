//! Two host replicas against the Kubernetes stand-in: leader election on a
//! Lease, scale patches from the leader only, hand-over on SIGKILL (within
//! the lease duration) and on SIGTERM (the lease is released), a stolen
//! lease, a paused and a deleted workload.

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
