//! How listed containers become members, and what a launch error says;
//! the engine itself is exercised by the end-to-end walk against a real
//! dockerd (`tests/e2e/providers/docker.rs`).

use super::*;

fn summary(name: &str, state: ContainerSummaryStateEnum, status: &str) -> ContainerSummary {
    ContainerSummary { names: Some(vec![format!("/{name}")]), state: Some(state), status: Some(status.into()), created: Some(1_700_000_000), ..Default::default() }
}

#[test]
fn engine_states_map_to_member_states() {
    use ContainerSummaryStateEnum as S;
    let none = HashSet::new();
    let now = 1_700_000_010;
    let m = |state, status: &str| listed(&summary("p-0", state, status), &none, now).unwrap();
    let up = m(S::RUNNING, "Up 3 seconds");
    assert_eq!((up.member.state, up.member.healthy, up.exited, up.created_only), (MemberState::Active, true, false, false));
    assert_eq!(up.member.started_at, 1_700_000_000_000);
    assert_eq!(&*up.member.id, "p-0", "named without the engine's leading slash");
    assert_eq!(m(S::RUNNING, "Up 2 seconds (health: starting)").member.state, MemberState::Starting);
    let sick = m(S::RUNNING, "Up 1 minute (unhealthy)");
    assert_eq!((sick.member.state, sick.member.healthy), (MemberState::Active, false));
    assert_eq!(sick.member.last_error.as_deref(), Some("Up 1 minute (unhealthy)"));
    let created = m(S::CREATED, "Created");
    assert_eq!((created.member.state, created.created_only), (MemberState::Starting, true));
    // Created long ago and never started: a leftover, not capacity.
    let leftover = listed(&summary("p-0", S::CREATED, "Created"), &none, now + 120).unwrap();
    assert_eq!((leftover.member.state, leftover.created_only, leftover.exited), (MemberState::Stopped, false, true));
    assert!(leftover.member.last_error.unwrap().contains("never started"));
    let crashing = m(S::RESTARTING, "Restarting (3) 1 second ago");
    assert_eq!((crashing.member.state, crashing.member.healthy), (MemberState::Backoff, false));
    let gone = m(S::EXITED, "Exited (1) 5 seconds ago");
    assert_eq!((gone.member.state, gone.exited), (MemberState::Stopped, true));
    assert_eq!(gone.member.last_error.as_deref(), Some("Exited (1) 5 seconds ago"));
}

#[test]
fn a_member_being_drained_shows_as_draining_and_is_not_tidied_away() {
    use ContainerSummaryStateEnum as S;
    let draining = HashSet::from(["p-1".to_owned()]);
    let running = listed(&summary("p-1", S::RUNNING, "Up 1 minute"), &draining, 1_700_000_010).unwrap();
    assert_eq!(running.member.state, MemberState::Draining);
    let stopped = listed(&summary("p-1", S::EXITED, "Exited (143) 1 second ago"), &draining, 1_700_000_010).unwrap();
    assert!(!stopped.exited, "its own drain removes it");
}

#[test]
fn launch_errors_say_what_to_do() {
    let e = |status: u16, message: &str| EngineError { status: Some(status), message: message.into(), retryable: false };
    assert!(hint(&e(404, "No such image: worker:9"), "worker:9").contains("`docker pull` or `docker load`"));
    assert!(hint(&e(400, "failed to create task: exec: \"/nope\": stat /nope: no such file or directory"), "w").contains("fix `command`"));
    assert!(hint(&e(500, "invalid mount config"), "w").contains("fix the container spec"));
    assert_eq!(hint(&e(409, "conflict"), "w"), "");
}
