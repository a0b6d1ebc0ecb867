//! A pool on an Azure virtual machine scale set, against the ARM and Entra
//! ID stand-in (`support/arm_standin.rs`; no Azure emulator exists): scaled
//! 0 → 10 → 3 → 0 through throttling, with the scale set showing exactly
//! the expected instances after each step and the requests exactly the
//! provider's documented endpoint list; a host killed half-way through a
//! scale-up; a quota hit; bad credentials, an endpoint that does not answer
//! and a deleted scale set; a managed identity and a workload identity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scalewise_e2e::arm_standin::{ASSERTION, ArmStandIn, GROUP, SECRET, SUBSCRIPTION, TENANT, VMSS};
use scalewise_e2e::host::{Host, IMMEDIATE, capacity, free_port, queue_depth_config};
use scalewise_providers::targets::azure::API_USE;

/// Pool `api`: queue-depth at 10 per instance, 0..=10 instances of the
/// stand-in's scale set; `credential` is the provider's sign-in fields.
fn config(dir: &Path, url: &str, credential: &str) -> PathBuf {
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
provider = {{ kind = "azure-vmss", subscription_id = "{SUBSCRIPTION}", resource_group = "{GROUP}", name = "{VMSS}", endpoint = "{url}", audience = "https://management.azure.com", authority_host = "{url}", imds_endpoint = "{url}", max_attempts = 4, request_timeout_secs = 5, operation_timeout_secs = 30, {credential} }}
metrics = [{{ name = "queue_depth", source = "push", window_secs = 1 }}]
{IMMEDIATE}
"#
        ),
    )
}

/// Sign in with a client secret from a file.
fn secret_config(dir: &Path, url: &str, secret: &str) -> PathBuf {
    let file = dir.join("client-secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    config(dir, url, &format!(r#"credential = "client-secret", tenant_id = "{TENANT}", client_id = "app-1", client_secret_file = "{}""#, file.display()))
}

fn drive_to(h: &Host, arm: &ArmStandIn, depth: f64, want: usize) {
    h.wait_for(&format!("the pool to hold {want}"), Duration::from_secs(60), |h| {
        h.push_depth(depth);
        (capacity(&h.get("/pools/api")) == want as u64 && arm.live() == want && arm.with(|a| a.capacity) == want as u32).then_some(())
    });
}

#[test]
fn a_scale_set_scales_0_10_3_0_through_throttling_using_exactly_the_documented_endpoints() {
    let arm = ArmStandIn::start(0);
    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&secret_config(dir.path(), &arm.url, SECRET), free_port());
    for (depth, want) in [(100.0, 10), (30.0, 3), (0.0, 0)] {
        // ARM throttles the next requests; the provider waits Retry-After.
        arm.with(|a| a.throttle_next = 2);
        drive_to(&h, &arm, depth, want);
        std::thread::sleep(Duration::from_millis(900));
        assert_eq!(arm.live(), want, "after settling at {want}");
    }
    assert_eq!(arm.with(|a| a.created_total), 10, "ten created in all, none twice");
    let throttled = arm.with(|a| a.requests.iter().filter(|(_, s)| *s == 429).count());
    assert!(throttled >= 6, "the throttling happened: {throttled}");
    // The requests are exactly the documented list, and every one of it
    // was used; besides them only operation polls and the token endpoint.
    let seen: std::collections::BTreeSet<String> = arm.with(|a| a.requests.iter().map(|(e, _)| e.clone()).collect());
    let documented: std::collections::BTreeSet<String> = API_USE.iter().map(|(m, p)| format!("{m} {p}")).chain(["operation".into(), "token".into()]).collect();
    assert_eq!(seen, documented, "the requests are the documented list, each of it used");
    assert_eq!(arm.count("token"), 1, "one token, cached");
}

#[test]
fn a_host_killed_half_way_through_a_scale_up_reconciles_without_launching_twice() {
    let arm = ArmStandIn::start(0);
    arm.with(|a| a.op_time = Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let mut h = Host::start(&secret_config(dir.path(), &arm.url, SECRET), free_port());
    h.wait_for("the capacity PATCH", Duration::from_secs(30), |h| {
        h.push_depth(100.0);
        (arm.count("PATCH {vmss}") >= 1).then_some(())
    });
    // The operation is still running: the host dies before it ends.
    h.kill9();
    h.restart();
    drive_to(&h, &arm, 100.0, 10);
    for _ in 0..6 {
        h.push_depth(100.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(arm.with(|a| a.created_total), 10, "nothing launched twice");
    assert_eq!(arm.count("PATCH {vmss}"), 1, "the restarted host found the capacity it had asked for");
}

#[test]
fn a_quota_hit_keeps_what_exists_and_stops_asking() {
    let arm = ArmStandIn::start(0);
    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&secret_config(dir.path(), &arm.url, SECRET), free_port());
    drive_to(&h, &arm, 20.0, 2);
    arm.with(|a| a.quota = Some(4));
    let e = h.wait_for("the quota error", Duration::from_secs(30), |h| {
        h.push_depth(100.0);
        h.get("/pools/api")["last_error"].as_str().filter(|e| e.contains("OperationNotAllowed")).map(str::to_owned)
    });
    assert!(e.contains("capacity 2 → 10 stopped at 2") && e.contains("a quota"), "says what happened and what to do: {e}");
    let patches = arm.count("PATCH {vmss}");
    for _ in 0..8 {
        h.push_depth(100.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(arm.count("PATCH {vmss}"), patches, "not asked again every tick");
    assert_eq!(arm.live(), 2, "what existed stays");
    let decisions = h.get("/pools/api/decisions?limit=3");
    assert!(decisions[0]["limited"]["why"].as_str().is_some_and(|w| w.contains("Azure refused more instances")), "{decisions}");
}

#[test]
fn bad_credentials_a_dead_endpoint_and_a_deleted_scale_set_are_reported_and_the_host_stays_up() {
    let arm = ArmStandIn::start(0);
    let healthy = |h: &Host| assert_eq!(reqwest::blocking::get(format!("{}/healthz", h.base)).unwrap().status(), 200);
    let error = |h: &Host, what: &str| h.wait_for(what, Duration::from_secs(30), |h| h.get("/pools/api")["last_error"].as_str().map(str::to_owned));

    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&secret_config(dir.path(), &arm.url, "wrong"), free_port());
    let e = error(&h, "the sign-in error");
    assert!(e.contains("client secret") && e.contains("AADSTS7000215") && e.contains("check the tenant"), "{e}");
    healthy(&h);
    drop(h);

    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let h = Host::start(&secret_config(dir.path(), &dead, SECRET), free_port());
    let e = error(&h, "the unreachable endpoint");
    assert!(e.contains("no answer from the token endpoint"), "{e}");
    healthy(&h);
    drop(h);
    // Signed in, but Resource Manager does not answer.
    let dir = tempfile::tempdir().unwrap();
    let cfg = secret_config(dir.path(), &arm.url, SECRET);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(&format!("endpoint = \"{}\"", arm.url), &format!("endpoint = \"{dead}\""));
    std::fs::write(&cfg, text).unwrap();
    let h = Host::start(&cfg, free_port());
    let e = error(&h, "the unreachable Resource Manager");
    assert!(e.contains("Unreachable") && e.contains("check `endpoint`"), "{e}");
    healthy(&h);
    drop(h);

    arm.with(|a| a.deleted = true);
    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&secret_config(dir.path(), &arm.url, SECRET), free_port());
    let e = error(&h, "the deleted scale set");
    assert!(e.contains("ResourceNotFound") && e.contains("was it deleted?"), "{e}");
    healthy(&h);
}

#[test]
fn a_managed_identity_and_a_workload_identity_sign_in() {
    let arm = ArmStandIn::start(0);
    let dir = tempfile::tempdir().unwrap();
    let h = Host::start(&config(dir.path(), &arm.url, r#"credential = "managed-identity""#), free_port());
    drive_to(&h, &arm, 10.0, 1);
    assert!(arm.count("imds") >= 1);
    drop(h);

    // Workload identity, as AKS's webhook sets it up: everything from the
    // environment, the federated token in a file.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("azure-identity-token");
    std::fs::write(&token, ASSERTION).unwrap();
    let cfg = config(dir.path(), &arm.url, r#"credential = "auto""#);
    let h = Host::start_with(&cfg, free_port(), &[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", "app-2"), ("AZURE_FEDERATED_TOKEN_FILE", token.to_str().unwrap()), ("AZURE_CLIENT_SECRET", "")]);
    drive_to(&h, &arm, 20.0, 2);
    assert!(arm.count("token") >= 1);
}
