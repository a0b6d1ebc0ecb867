//! A pool of containers on a real Docker engine (Debian's dockerd, started
//! by the test on a private socket): scaled 0 → 10 → 3 → 0 by the control
//! loop with the engine showing exactly the expected members after each
//! step; a host killed with SIGKILL half-way through a scale-up; an engine
//! that is down at start and restarts mid-run; a member that crashes at
//! once; a name held by someone else's container; an image the engine
//! lacks and an engine that is not there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalewise_e2e::docker::{Dockerd, IMAGE, WORKER};
use scalewise_e2e::host::{Host, IMMEDIATE, capacity, free_port, queue_depth_config};

/// Pool `api`: queue-depth at 10 per container, 0..=10 containers on
/// `engine`; `provider` adds fields to the provider's table.
fn config(dir: &Path, engine: &str, provider: &str) -> PathBuf {
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
provider = {{ kind = "docker", host = "{engine}", image = "{IMAGE}", command = {WORKER}, network = "none", grace_secs = 2, memory_mib = 64, max_attempts = 3, call_timeout_secs = 5{provider} }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 1 }}]
{IMMEDIATE}
"#
        ),
    )
}

/// Push `depth` until the pool holds `want` and the engine shows exactly
/// `want` of the pool's containers, all running.
fn drive_to(h: &Host, d: &Dockerd, depth: f64, want: usize) {
    h.wait_for(&format!("the pool to hold {want}"), Duration::from_secs(90), |h| {
        h.push_depth(depth);
        let all = d.pool("api");
        (capacity(&h.get("/pools/api")) == want as u64 && all.len() == want && all.iter().all(|(_, s)| s == "running")).then_some(())
    });
}

#[test]
fn a_pool_of_containers_scales_0_10_3_0_and_reports_health_cpu_and_memory() {
    let d = Dockerd::start();
    let dir = tempfile::tempdir().unwrap();
    let health = r#", healthcheck = { test = ["CMD-SHELL", "test -f /tmp/ready"], interval_secs = 0.2, retries = 2 }"#;
    let h = Host::start(&config(dir.path(), &d.host, health), free_port());
    drive_to(&h, &d, 100.0, 10);
    let names: Vec<String> = d.pool("api").into_iter().map(|(n, _)| n).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("scalewise-api-{i}")).collect();
    let (mut sorted_names, mut sorted_expected) = (names.clone(), expected.clone());
    sorted_names.sort();
    sorted_expected.sort();
    assert_eq!(sorted_names, sorted_expected, "one container per slot, no duplicates");
    // Health from the healthcheck; CPU and memory from the stats API.
    let p = h.wait_for("healthy members with stats", Duration::from_secs(30), |h| {
        h.push_depth(100.0);
        let p = h.get("/pools/api");
        let members = p["members"]["members"].as_array().unwrap().clone();
        let ready = members.iter().all(|m| m["state"] == "active" && m["healthy"] == true && m["memory_bytes"].as_u64().is_some_and(|b| b > 0) && m["cpu_percent"].is_number());
        (members.len() == 10 && ready).then_some(p)
    });
    assert_eq!(p["target"], "docker");
    // Members carry the pool's label and the limits asked for.
    let inspect = d.ok(&["inspect", "--format", "{{index .Config.Labels \"scalewise.pool\"}} {{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}", "scalewise-api-0"]);
    assert_eq!(inspect.trim(), format!("api {} unless-stopped", 64 << 20));

    drive_to(&h, &d, 30.0, 3);
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(d.running("api").len(), 3, "nothing more went or came");
    drive_to(&h, &d, 0.0, 0);
    std::thread::sleep(Duration::from_millis(900));
    assert!(d.pool("api").is_empty(), "{:?}", d.pool("api"));
    // Scale-in went through the decisions, each explained.
    let decisions = h.get("/pools/api/decisions?limit=500");
    assert!(decisions.as_array().unwrap().iter().any(|x| x["action"]["from"] == 10 && x["action"]["to"] == 3), "{decisions}");
}

#[test]
fn a_host_killed_half_way_through_a_scale_up_reconciles_without_duplicates() {
    let d = Dockerd::start();
    let dir = tempfile::tempdir().unwrap();
    // One create at a time, so the kill lands half-way.
    let mut h = Host::start(&config(dir.path(), &d.host, ", parallel = 1"), free_port());
    h.wait_for("a few containers to exist", Duration::from_secs(60), |h| {
        h.push_depth(100.0);
        let n = d.pool("api").len();
        (n >= 2).then_some(n)
    });
    h.kill9();
    let before = d.pool("api").len();
    assert!(before < 10, "the kill landed half-way: {before}");
    h.restart();
    drive_to(&h, &d, 100.0, 10);
    for _ in 0..6 {
        h.push_depth(100.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    let all = d.pool("api");
    assert_eq!(all.len(), 10, "nothing launched twice: {all:?}");
    assert!(all.iter().all(|(n, s)| s == "running" && n.strip_prefix("scalewise-api-").and_then(|i| i.parse::<u32>().ok()).is_some_and(|i| i < 10)), "{all:?}");
}

#[test]
fn an_engine_down_at_start_and_restarted_mid_run_costs_no_member_and_no_duplicate() {
    let mut d = Dockerd::start();
    d.stop();
    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&config(dir.path(), &d.host, ""), free_port());
    let e = h.wait_for("the engine's absence to be reported", Duration::from_secs(30), |h| {
        h.push_depth(30.0);
        h.get("/pools/api")["last_error"].as_str().map(str::to_owned)
    });
    assert!(e.contains("is dockerd running"), "says what to check: {e}");
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200, "the host stays up");

    d.restart();
    drive_to(&h, &d, 30.0, 3);
    // The engine restarts under the pool: its members come back with it
    // (restart policy unless-stopped), and the pool does not add more.
    d.restart();
    h.wait_for("the members to be back", Duration::from_secs(60), |h| {
        h.push_depth(30.0);
        (d.running("api").len() == 3 && capacity(&h.get("/pools/api")) == 3).then_some(())
    });
    for _ in 0..6 {
        h.push_depth(30.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(d.pool("api").len(), 3, "{:?}", d.pool("api"));
}

#[test]
fn a_member_that_crashes_at_once_backs_off_without_churn_and_the_pool_still_scales_in() {
    let d = Dockerd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &d.host, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(&format!("command = {WORKER}"), r#"command = ["sh", "-c", "exit 3"]"#);
    std::fs::write(&cfg, text).unwrap();
    let h = Host::start(&cfg, free_port());
    let m = h.wait_for("a member in back-off", Duration::from_secs(60), |h| {
        h.push_depth(20.0);
        let p = h.get("/pools/api");
        let members = p["members"]["members"].as_array().unwrap().clone();
        members.into_iter().find(|m| m["state"] == "backoff" && m["last_error"].as_str().is_some_and(|e| e.contains("code 3")))
    });
    assert_eq!(m["healthy"], false, "{m}");
    // The engine restarts them; the pool makes no new ones.
    for _ in 0..10 {
        h.push_depth(20.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(d.pool("api").len(), 2, "no churn: {:?}", d.pool("api"));
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
    // Members that cannot start do not keep the pool from scaling in: the
    // scale-up is not waited on for ever.
    h.wait_for("the scale-in", Duration::from_secs(30), |h| {
        h.push_depth(10.0);
        (d.pool("api").len() == 1).then_some(())
    });
}

#[test]
fn a_name_held_by_another_container_is_skipped_and_left_alone() {
    let d = Dockerd::start();
    d.ok(&["create", "--name", "scalewise-api-0", "--network", "none", IMAGE, "sh"]);
    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&config(dir.path(), &d.host, ""), free_port());
    drive_to(&h, &d, 30.0, 3);
    let names: Vec<String> = d.pool("api").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["scalewise-api-1", "scalewise-api-2", "scalewise-api-3"]);
    drive_to(&h, &d, 0.0, 0);
    let foreign = d.ok(&["inspect", "--format", "{{.State.Status}} {{index .Config.Labels \"scalewise.pool\"}}", "scalewise-api-0"]);
    assert_eq!(foreign.trim(), "created", "untouched, not the pool's");
}

#[test]
fn an_image_the_engine_lacks_and_an_engine_that_is_not_there_are_reported_and_the_host_stays_up() {
    let d = Dockerd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &d.host, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(&format!("image = \"{IMAGE}\""), "image = \"worker:404\"");
    std::fs::write(&cfg, text).unwrap();
    let h = Host::start(&cfg, free_port());
    let e = h.wait_for("the missing image", Duration::from_secs(30), |h| {
        h.push_depth(30.0);
        h.get("/pools/api")["last_error"].as_str().map(str::to_owned)
    });
    assert!(e.contains("worker:404") && e.contains("`docker pull` or `docker load`"), "says what to do: {e}");
    // Held, not asked again at every tick.
    let decisions = h.wait_for("a held scale-up", Duration::from_secs(10), |h| {
        h.push_depth(30.0);
        let d = h.get("/pools/api/decisions?limit=3");
        d[0]["limited"]["why"].as_str().is_some_and(|w| w.contains("refused a new container")).then_some(d)
    });
    assert!(decisions[0]["limited"]["why"].as_str().unwrap().contains("No such image"), "{decisions}");
    assert!(d.pool("api").is_empty());
    drop(h);

    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&config(dir.path(), "tcp://127.0.0.1:1", ""), free_port());
    let e = h.wait_for("the unreachable engine", Duration::from_secs(30), |h| h.get("/pools/api")["last_error"].as_str().map(str::to_owned));
    assert!(e.contains("cannot reach the Docker engine") && e.contains("is dockerd running"), "{e}");
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
}
