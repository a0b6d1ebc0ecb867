//! A pool's [`TargetEvent`] as an `events.k8s.io/v1` Event on the scaled
//! workload, so `kubectl describe` and `kubectl events` show scalewise's
//! actions and refusals next to the Deployment controller's own.
//!
//! Why `events.k8s.io/v1` and not the core `v1` Event: it is the API
//! client-go's current recorder writes, it has fields for exactly what is
//! said here (`regarding`, `action`, `reportingController`,
//! `reportingInstance`, a microsecond `eventTime`) and the API server
//! rejects an event without them, so a malformed one fails loudly instead
//! of showing up half empty. The object is named as client-go names it
//! (`<workload>.<hex nanoseconds>`), and the note is cut to the 1 KB the API
//! documents. One Event per call: the control loop already sends a refusal
//! once rather than every tick, which is what an event series would
//! otherwise be for (and would need `patch` on events besides `create`).

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use super::WorkloadRef;
use crate::targets::TargetEvent;

/// `reportingController`: who writes these events.
pub const REPORTING_CONTROLLER: &str = "scalewise.io/scalewise";

/// `action`: what scalewise does to the workload, whatever became of it.
pub const ACTION: &str = "Scale";

/// The API server keeps at most this much of a note (`note` is documented
/// as at most 1 kB).
const NOTE_MAX: usize = 1024;

/// `reportingInstance`, the controller's fields and an object name are
/// validated at these lengths by the API server.
const FIELD_MAX: usize = 128;
const NAME_MAX: usize = 253;

/// This host replica, as `reportingInstance`: `$POD_NAME` (the downward
/// API, as the shipped Deployment sets it), else `$HOSTNAME`, else the
/// kernel's host name, else `scalewise-<pid>`; the leader election's
/// default identity in the same order.
pub fn reporting_instance() -> String {
    let hostname = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned());
    let found = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(hostname)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("scalewise-{}", std::process::id()));
    truncate(&found, FIELD_MAX).to_owned()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A note of at most [`NOTE_MAX`] bytes, marked with `…` where cut.
fn note(message: &str) -> String {
    if message.len() <= NOTE_MAX {
        return message.to_owned();
    }
    format!("{}…", truncate(message, NOTE_MAX - '…'.len_utf8()))
}

/// `<workload>.<hex>`, as client-go names events: the time in nanoseconds,
/// made strictly increasing within this process so that two events in the
/// same nanosecond (or a clock step back) never share a name.
fn name(workload: &str, at: Timestamp) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let nanos = u64::try_from(at.as_nanosecond()).unwrap_or(0);
    let prev = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(nanos.max(last + 1))).unwrap_or(0);
    let stamp = nanos.max(prev + 1);
    let suffix = format!(".{stamp:x}");
    format!("{}{suffix}", truncate(workload, NAME_MAX - suffix.len()))
}

/// The Event for `event` on `workload` (whose `uid`, if known, pins the
/// reference to this incarnation of the object).
pub fn to_event(workload: &WorkloadRef, uid: Option<String>, instance: &str, event: &TargetEvent) -> Event {
    // When the pool saw it (the loop's clock is the wall clock here).
    let at = Timestamp::from_millisecond(event.at).unwrap_or_else(|_| Timestamp::now());
    Event {
        metadata: ObjectMeta { name: Some(name(&workload.name, at)), namespace: Some(workload.namespace.clone()), ..ObjectMeta::default() },
        event_time: Some(MicroTime(at)),
        regarding: Some(ObjectReference {
            api_version: Some(workload.api_version.clone()),
            kind: Some(workload.kind.clone()),
            name: Some(workload.name.clone()),
            namespace: Some(workload.namespace.clone()),
            uid,
            ..ObjectReference::default()
        }),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.to_owned()),
        action: Some(ACTION.into()),
        reason: Some(event.reason_code().into()),
        note: Some(note(&event.message())),
        type_: Some(if event.kind.is_warning() { "Warning" } else { "Normal" }.into()),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TargetEventKind;

    fn web() -> WorkloadRef {
        WorkloadRef { api_version: "apps/v1".into(), kind: "Deployment".into(), plural: None, namespace: "shop".into(), name: "web".into() }
    }

    #[test]
    fn an_action_becomes_a_normal_event_regarding_the_workload() {
        let e = TargetEvent { kind: TargetEventKind::Scaled, from: 1, to: 5, cause: "policy".into(), reason: "queue-depth decides alone".into(), at: 1_795_428_000_123 };
        let ev = to_event(&web(), Some("u-1".into()), "scalewise-0", &e);
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!((v["apiVersion"].as_str(), v["kind"].as_str()), (Some("events.k8s.io/v1"), Some("Event")));
        assert_eq!(v["type"], "Normal");
        assert_eq!(v["reason"], "ScaledUp");
        assert_eq!(v["action"], "Scale");
        assert_eq!(v["reportingController"], "scalewise.io/scalewise");
        assert_eq!(v["reportingInstance"], "scalewise-0");
        assert_eq!(v["note"], "1 → 5 by policy: queue-depth decides alone");
        assert_eq!(v["regarding"], serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop", "uid": "u-1"}));
        assert_eq!(v["metadata"]["namespace"], "shop");
        let name = v["metadata"]["name"].as_str().unwrap();
        let hex = name.strip_prefix("web.").unwrap();
        assert!(!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        // RFC 3339 with exactly six fractional digits.
        let t = v["eventTime"].as_str().unwrap();
        assert_eq!(t.len(), "2026-11-23T10:00:00.123000Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    }

    #[test]
    fn a_refusal_is_a_warning_and_names_are_unique() {
        let e = TargetEvent { kind: TargetEventKind::AwaitingApproval, from: 3, to: 9, cause: "policy".into(), reason: "big".into(), at: 0 };
        let (a, b) = (to_event(&web(), None, "i", &e), to_event(&web(), None, "i", &e));
        assert_eq!(a.type_.as_deref(), Some("Warning"));
        assert_eq!(a.regarding.as_ref().unwrap().uid, None);
        assert_ne!(a.metadata.name, b.metadata.name);
    }

    #[test]
    fn the_note_is_cut_to_1kb_on_a_character_boundary() {
        let long = "é".repeat(2000);
        let e = TargetEvent { kind: TargetEventKind::ScaleFailed, from: 1, to: 2, cause: "manual".into(), reason: long, at: 0 };
        let note = to_event(&web(), None, "i", &e).note.unwrap();
        assert!(note.len() <= NOTE_MAX, "{}", note.len());
        assert!(note.ends_with('…') && note.starts_with("1 → 2 by manual failed: é"));
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
