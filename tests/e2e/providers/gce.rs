//! A pool on a Compute Engine managed instance group, through Google's own
//! client against the Compute and metadata stand-in
//! (`support/gce_standin.rs`; no Compute Engine emulator exists): zonal
//! and regional groups scaled 0 → 10 → 3 → 0 through rate limiting, with
//! the group showing exactly the expected instances after each step and
//! the requests exactly the provider's documented endpoint list; a host
//! killed half-way through a scale-up; a quota; credentials Compute
//! refuses, an endpoint that does not answer and a deleted group.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scalewise_e2e::gce_standin::{GROUP, GceStandIn, PROJECT};
use scalewise_e2e::host::{Host, IMMEDIATE, capacity, free_port, queue_depth_config};
use scalewise_providers::targets::gce::API_USE;

/// Pool `api`: queue-depth at 10 per instance, 0..=10 instances of the
/// group at `location` (`zone = "..."` or `region = "..."`).
fn config(dir: &Path, endpoint: &str, location: &str) -> PathBuf {
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
provider = {{ kind = "gce", project = "{PROJECT}", {location}, name = "{GROUP}", endpoint = "{endpoint}", max_attempts = 4, request_timeout_secs = 5, operation_timeout_secs = 30, page_size = 4, quota_cooldown_secs = 5 }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 1 }}]
{IMMEDIATE}
"#
        ),
    )
}

/// The host with the standard credential chain ending at the stand-in's
/// metadata server (no key file, no gcloud configuration in its HOME).
fn start(cfg: &Path, gce: &GceStandIn, home: &Path) -> Host {
    Host::start_with(cfg, free_port(), &[("GCE_METADATA_HOST", &gce.host), ("HOME", home.to_str().unwrap()), ("CLOUDSDK_CONFIG", home.join("gcloud").to_str().unwrap())])
}

fn drive_to(h: &Host, gce: &GceStandIn, depth: f64, want: usize) {
    h.wait_for(&format!("the pool to hold {want}"), Duration::from_secs(60), |h| {
        h.push_depth(depth);
        (capacity(&h.get("/pools/api")) == want as u64 && gce.live() == want && gce.with(|g| g.target_size) == want as u32).then_some(())
    });
}

fn walk(location_field: &str, location: &str) {
    let gce = GceStandIn::start(location);
    let dir = tempfile::tempdir().unwrap();
    let h = start(&config(dir.path(), &gce.url, location_field), &gce, dir.path());
    for (depth, want) in [(100.0, 10), (30.0, 3), (0.0, 0)] {
        gce.with(|g| g.throttle_next = 2);
        drive_to(&h, &gce, depth, want);
        std::thread::sleep(Duration::from_millis(900));
        assert_eq!(gce.live(), want, "after settling at {want}");
    }
    assert_eq!(gce.with(|g| g.created_total), 10, "ten created in all, none twice");
    let limited = gce.with(|g| g.requests.iter().filter(|(_, s)| *s == 429).count());
    assert!(limited >= 6, "the rate limiting happened: {limited}");
    let seen: BTreeSet<String> = gce.with(|g| g.requests.iter().map(|(e, _)| e.clone()).filter(|e| !e.starts_with("mds")).collect());
    let documented: BTreeSet<String> = API_USE.iter().map(|(m, p)| format!("{m} {p}")).collect();
    assert_eq!(seen, documented, "the requests are the documented list, each of it used");
}

#[test]
fn a_zonal_group_scales_0_10_3_0_through_rate_limits_using_exactly_the_documented_endpoints() {
    walk(r#"zone = "europe-west1-b""#, "zones/europe-west1-b");
}

#[test]
fn a_regional_group_scales_0_10_3_0_the_same_way() {
    walk(r#"region = "europe-west1""#, "regions/europe-west1");
}

#[test]
fn a_host_killed_half_way_through_a_scale_up_reconciles_without_resizing_twice() {
    let gce = GceStandIn::start("zones/europe-west1-b");
    gce.with(|g| g.op_time = Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(&config(dir.path(), &gce.url, r#"zone = "europe-west1-b""#), &gce, dir.path());
    h.wait_for("the resize", Duration::from_secs(30), |h| {
        h.push_depth(100.0);
        (gce.count("POST {igm}/resize") >= 1).then_some(())
    });
    h.kill9();
    h.restart();
    drive_to(&h, &gce, 100.0, 10);
    for _ in 0..6 {
        h.push_depth(100.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(gce.with(|g| g.created_total), 10, "nothing created twice");
    assert_eq!(gce.count("POST {igm}/resize"), 1, "the restarted host found the size it had asked for");
}

#[test]
fn instances_over_the_quota_are_reported_removed_first_and_scale_ups_held() {
    let gce = GceStandIn::start("zones/europe-west1-b");
    gce.with(|g| g.quota = Some(4));
    let dir = tempfile::tempdir().unwrap();
    let h = start(&config(dir.path(), &gce.url, r#"zone = "europe-west1-b""#), &gce, dir.path());
    drive_to(&h, &gce, 20.0, 2);
    // Ten asked, four fit: the group keeps trying the other six, which show
    // as members in back-off with Compute Engine's reason.
    let p = h.wait_for("the stuck instances", Duration::from_secs(30), |h| {
        h.push_depth(100.0);
        let p = h.get("/pools/api");
        let members = p["members"]["members"].as_array().unwrap().clone();
        let stuck = members.iter().filter(|m| m["state"] == "backoff" && m["last_error"].as_str().is_some_and(|e| e.contains("QUOTA_EXCEEDED"))).count();
        (stuck == 6 && p["running"] == 4).then_some(p)
    });
    assert_eq!(capacity(&p), 10, "{p}");
    // Scale-in removes what cannot be created first.
    h.wait_for("the scale-in", Duration::from_secs(30), |h| {
        h.push_depth(50.0);
        (gce.live() == 5).then_some(())
    });
    let stuck_left = gce.with(|g| g.vms.iter().filter(|v| v.deleting_since.is_none() && v.stuck).count());
    assert_eq!(stuck_left, 1, "the four running stay");
    // More is wanted again: held at what runs, and said why.
    let decisions = h.wait_for("a held decision", Duration::from_secs(15), |h| {
        h.push_depth(100.0);
        let d = h.get("/pools/api/decisions?limit=3");
        d[0]["limited"]["why"].as_str().is_some_and(|w| w.contains("cannot create more instances") && w.contains("QUOTA_EXCEEDED")).then_some(d)
    });
    let resizes = gce.count("POST {igm}/resize");
    for _ in 0..8 {
        h.push_depth(100.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(gce.count("POST {igm}/resize"), resizes, "not asked again every tick: {decisions}");
    assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
}

#[test]
fn refused_credentials_a_dead_endpoint_and_a_deleted_group_are_reported_and_the_host_stays_up() {
    let gce = GceStandIn::start("zones/europe-west1-b");
    let healthy = |h: &Host| assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
    let error = |h: &Host, what: &str| h.wait_for(what, Duration::from_secs(30), |h| h.get("/pools/api")["last_error"].as_str().map(str::to_owned));
    let zone = r#"zone = "europe-west1-b""#;

    gce.with(|g| g.bad_tokens = true);
    let dir = tempfile::tempdir().unwrap();
    let h = start(&config(dir.path(), &gce.url, zone), &gce, dir.path());
    let e = error(&h, "the refused credentials");
    assert!(e.contains("invalid authentication credentials") && e.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{e}");
    healthy(&h);
    drop(h);
    gce.with(|g| g.bad_tokens = false);

    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let h = start(&config(dir.path(), &dead, zone), &gce, dir.path());
    let e = error(&h, "the unreachable endpoint");
    assert!(e.contains("check `endpoint`"), "{e}");
    healthy(&h);
    drop(h);

    gce.with(|g| g.deleted = true);
    let dir = tempfile::tempdir().unwrap();
    let h = start(&config(dir.path(), &gce.url, zone), &gce, dir.path());
    let e = error(&h, "the deleted group");
    assert!(e.contains("was not found") && e.contains("was it deleted?"), "{e}");
    healthy(&h);
}
