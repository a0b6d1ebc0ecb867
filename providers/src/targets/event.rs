//! What a pool did to its target, or could not do, told to the target so
//! that the infrastructure's own tools show it next to the workload
//! ([`Target::record_event`](super::Target::record_event)).
//!
//! Why the target and not a separate notifier: the place an operator looks
//! first is the thing being scaled (`kubectl describe deployment web` lists
//! the object's Events; a cloud console shows an instance group's activity
//! log), and only the target knows which object that is and how to write
//! there. So an event here names no object and no API: it is the pool's
//! side of the story (what changed, from what to what, who wanted it, why),
//! and each target turns it into its own record. Only the `kubernetes`
//! target writes one now; a Docker, GCE or Azure target would map the same
//! kinds onto its labels, operations log or activity log.
//!
//! Events are best-effort notes, never part of a decision: the control loop
//! sends them from a task of their own with a timeout, and a target that
//! cannot record one loses it.

use serde::Serialize;

/// What happened, in the terms every target shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetEventKind {
    /// The target was asked for `to` members and accepted.
    Scaled,
    /// The target was asked for `to` members and failed, or the host could
    /// not ask (it no longer held the leader lease).
    ScaleFailed,
    /// The policies wanted `to`; a cost rule denied the change (or cut it
    /// back to what is there, or failed, which denies a scale-up).
    CostDenied,
    /// The change is larger than the pool's `approval_above` and waits for
    /// an operator.
    AwaitingApproval,
    /// The policies wanted more than the target or the pool's metric
    /// limits can hold now (quota, free memory): nothing more fits.
    NoRoom,
}

impl TargetEventKind {
    /// Whether someone should look: anything but a change that went through.
    pub fn is_warning(self) -> bool {
        self != TargetEventKind::Scaled
    }
}

/// One thing that happened to a pool, for its target to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetEvent {
    pub kind: TargetEventKind,
    /// The pool's capacity before.
    pub from: u32,
    /// What was asked for (or wanted, for a refusal).
    pub to: u32,
    /// Who wanted the change: `policy`, `manual` or `approval`.
    pub cause: String,
    /// Why, in words: the policies' explanation, the error, the refusal.
    pub reason: String,
    /// When, ms since the epoch.
    pub at: i64,
}

impl TargetEvent {
    /// A short CamelCase word for what happened, as Kubernetes (and most
    /// activity logs) file events by: `ScaledUp`, `ScaledDown`,
    /// `FailedScale`, `ScaleRefused`, `AwaitingApproval`, `ScaleLimited`.
    pub fn reason_code(&self) -> &'static str {
        match self.kind {
            TargetEventKind::Scaled if self.to >= self.from => "ScaledUp",
            TargetEventKind::Scaled => "ScaledDown",
            TargetEventKind::ScaleFailed => "FailedScale",
            TargetEventKind::CostDenied => "ScaleRefused",
            TargetEventKind::AwaitingApproval => "AwaitingApproval",
            TargetEventKind::NoRoom => "ScaleLimited",
        }
    }

    /// The event in one line: `1 → 5 by policy: <reason>`, with what
    /// became of it for anything but a change that went through.
    pub fn message(&self) -> String {
        let what = match self.kind {
            TargetEventKind::Scaled => "",
            TargetEventKind::ScaleFailed => " failed",
            TargetEventKind::CostDenied => " refused by a cost rule",
            TargetEventKind::AwaitingApproval => " awaits approval",
            TargetEventKind::NoRoom => " does not fit",
        };
        format!("{} → {} by {}{what}: {}", self.from, self.to, self.cause, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: TargetEventKind, from: u32, to: u32) -> TargetEvent {
        TargetEvent { kind, from, to, cause: "policy".into(), reason: "queue-depth decides alone".into(), at: 0 }
    }

    #[test]
    fn reason_codes_and_messages() {
        let up = event(TargetEventKind::Scaled, 1, 5);
        assert_eq!((up.reason_code(), up.message().as_str()), ("ScaledUp", "1 → 5 by policy: queue-depth decides alone"));
        assert_eq!(event(TargetEventKind::Scaled, 5, 2).reason_code(), "ScaledDown");
        let denied = event(TargetEventKind::CostDenied, 1, 5);
        assert_eq!(denied.reason_code(), "ScaleRefused");
        assert!(denied.message().starts_with("1 → 5 by policy refused by a cost rule: "), "{}", denied.message());
        assert!(denied.kind.is_warning() && !up.kind.is_warning());
    }
}
