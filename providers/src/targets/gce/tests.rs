//! How managed instances become members, read from the REST JSON Compute
//! Engine sends (the shape of `instanceGroupManagers.listManagedInstances`
//! in Google's reference), and the request ids; the calls themselves are
//! exercised against the stand-in (`tests/e2e/providers/gce.rs`).

use super::*;
use serde_json::json;

fn managed(v: serde_json::Value) -> ManagedInstance {
    serde_json::from_value(v).unwrap()
}

const URL: &str = "https://www.googleapis.com/compute/v1/projects/p/zones/europe-west1-b/instances/web-x1z2";

#[test]
fn managed_instances_map_to_member_states() {
    let m = |action: &str, status: Option<&str>| {
        let mut v = json!({"instance": URL, "id": "4711", "currentAction": action, "name": "web-x1z2"});
        if let Some(s) = status {
            v["instanceStatus"] = json!(s);
        }
        member(&managed(v)).unwrap().0
    };
    assert_eq!(m("REFRESHING", Some("RUNNING")).state, MemberState::Active, "a refresh does not stop it");
    let up = m("NONE", Some("RUNNING"));
    assert_eq!((&*up.id, up.state, up.healthy), ("web-x1z2", MemberState::Active, true));
    assert_eq!(m("CREATING", None).state, MemberState::Starting);
    assert_eq!(m("VERIFYING", Some("STAGING")).state, MemberState::Starting);
    assert_eq!(m("DELETING", Some("RUNNING")).state, MemberState::Draining);
    let stopped = m("NONE", Some("TERMINATED"));
    assert_eq!((stopped.state, stopped.healthy), (MemberState::Backoff, false));

    let stuck = member(&managed(json!({
        "instance": URL, "currentAction": "CREATING",
        "lastAttempt": {"errors": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "Quota 'CPUS' exceeded.  Limit: 8.0 in region europe-west1."}]}}
    })))
    .unwrap();
    assert_eq!((stuck.0.state, stuck.2), (MemberState::Backoff, true));
    assert!(stuck.0.last_error.unwrap().starts_with("QUOTA_EXCEEDED: Quota 'CPUS' exceeded"));
    // A stopped instance, or a running one with an old error, is not stuck.
    let preempted = member(&managed(json!({"instance": URL, "currentAction": "NONE", "instanceStatus": "TERMINATED"}))).unwrap();
    assert_eq!((preempted.0.state, preempted.2), (MemberState::Backoff, false));
    let recovered = member(&managed(json!({"instance": URL, "currentAction": "NONE", "instanceStatus": "RUNNING",
        "lastAttempt": {"errors": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "old"}]}}}))).unwrap();
    assert_eq!((recovered.0.state, recovered.2), (MemberState::Active, false));

    let sick = member(&managed(json!({"instance": URL, "currentAction": "NONE", "instanceStatus": "RUNNING",
        "instanceHealth": [{"detailedHealthState": "UNHEALTHY", "healthCheck": "hc"}]}))).unwrap().0;
    assert_eq!((sick.state, sick.healthy), (MemberState::Active, false));
    assert_eq!(&*member(&managed(json!({"instance": URL}))).unwrap().0.id, "web-x1z2", "named from its URL");
    assert!(member(&managed(json!({"name": "no url"}))).is_none());
}

#[test]
fn request_ids_are_distinct_version_4_uuids() {
    let a = request_id();
    let b = request_id();
    assert_ne!(a, b);
    let parts: Vec<&str> = a.split('-').collect();
    assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{a}");
    assert!(parts[2].starts_with('4') && "89ab".contains(&parts[3][..1]), "{a}");
}
