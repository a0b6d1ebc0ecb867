//! Telling the target what the pool did to it and what it was refused
//! ([`Target::record_event`]), so the infrastructure's own tools show it
//! next to the workload (a Kubernetes Event on the Deployment).
//!
//! Why a queue and a task of its own: an event is a note for people, never
//! part of a decision. Posting one is a network call to the same API the
//! pool acts through, and that API being slow or refusing events (RBAC
//! without `create` on events, an admission webhook, an outage) must not
//! delay a tick by a millisecond or fail an action. So the loop only
//! classifies its decision and `try_send`s onto a bounded queue; one task
//! per pool posts, each post under a timeout. A full queue drops the event
//! and counts it; a failing target is logged once at WARN, then at debug
//! until it records one again.
//!
//! What counts, from what the decision record already says (live decisions
//! only: a dry run, a paused pool and a standby replica act on nothing, so
//! they have nothing to tell the workload):
//!
//! - an action the target accepted: a `Scaled` event, every time;
//! - a refusal, a change the policies wanted that did not happen and will
//!   not happen by waiting: the target failed the action (or the lease was
//!   lost before it), the change waits for an operator's approval, a cost
//!   rule denied it (or clamped it back to what is there, or failed, which
//!   denies a scale-up), or nothing more fits the target (feasibility cut
//!   it to the current size).
//!
//! What does not count: a guardrail holding the pool (tolerance, cooldowns,
//! stabilization, step limits, an operator's hold). Those are the pool
//! working as configured, they pass by themselves, and they would flood
//! the workload's events.
//!
//! A refusal is told once, not every tick it lasts: the loop remembers the
//! last one told (kind, from, to, cause, and who refused: the cost rule, the
//! limit) and tells the next only when that changes. The free-text reason
//! is not part of it, since policies put live numbers there (spend so far,
//! free memory) that change every tick. What was told is forgotten once the
//! pool is content (the policies want what is there) or an action goes
//! through, so a refusal that comes back later is told again. Kubernetes
//! clients do the same with event series: repeats of one event are counted,
//! not posted again.

use std::sync::Arc;
use std::time::Duration;

use scalewise_providers::{Target, TargetEvent, TargetEventKind};
use tokio::sync::mpsc;

use crate::decide::guardrails::round_desired;
use crate::decide::record::{DecisionRecord, Mode, Outcome};

/// Events waiting to be posted, per pool. An action takes a tick, so this
/// is many seconds of events even with a fast interval.
const QUEUE: usize = 32;

/// The longest one post may take before it is given up.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a decision means for the pool's events.
#[derive(Debug, PartialEq)]
enum Happened {
    /// An action the target accepted.
    Acted(TargetEvent),
    /// A change refused; told once per [`Refusal`].
    Refused(Refusal, TargetEvent),
    /// The policies want what is there.
    Content,
    /// Nothing to tell (a guardrail holds, a mode that does not act).
    Nothing,
}

/// Which refusal: what is compared to tell a refusal once.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    kind: TargetEventKind,
    from: u32,
    to: u32,
    cause: String,
    /// The cost rule or the limit that refused, where one did.
    by: String,
}

/// A pool's side of its target's events: classifies decisions, tells each
/// refusal once, and hands events to the posting task.
pub(super) struct Announcer {
    /// `None` where the target records no events.
    queue: Option<mpsc::Sender<TargetEvent>>,
    pool: String,
    told: Option<Refusal>,
    dropped: u64,
}

impl Announcer {
    /// An announcer for `pool`, with a posting task if `target` records
    /// events (none otherwise: a local or simulated pool pays nothing).
    /// Call inside a tokio runtime.
    pub(super) fn new(pool: &str, target: &Arc<dyn Target>) -> Self {
        let queue = target.records_events().then(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(post(pool.to_owned(), target.clone(), rx));
            tx
        });
        Self { queue, pool: pool.to_owned(), told: None, dropped: 0 }
    }

    /// Tell the target what `record` means for it, if anything. `min` and
    /// `max` are the pool's bounds (what the policies can want).
    pub(super) fn observe(&mut self, record: &DecisionRecord, min: u32, max: u32, now: i64) {
        if self.queue.is_none() {
            return;
        }
        match classify(record, min, max, now) {
            Happened::Acted(event) => {
                self.told = None;
                self.send(event);
            }
            Happened::Refused(refusal, event) => {
                if self.told.as_ref() != Some(&refusal) {
                    self.told = Some(refusal);
                    self.send(event);
                }
            }
            Happened::Content => self.told = None,
            Happened::Nothing => {}
        }
    }

    fn send(&mut self, event: TargetEvent) {
        let Some(queue) = &self.queue else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(event) {
            self.dropped += 1;
            if self.dropped == 1 {
                tracing::warn!(pool = %self.pool, "the target's events fall behind; dropping events (further drops are logged at debug)");
            } else {
                tracing::debug!(pool = %self.pool, dropped = self.dropped, "event dropped: the queue is full");
            }
        }
    }
}

/// Post each queued event, one at a time, each under [`POST_TIMEOUT`].
async fn post(pool: String, target: Arc<dyn Target>, mut queue: mpsc::Receiver<TargetEvent>) {
    let mut failing = false;
    while let Some(event) = queue.recv().await {
        let result = match tokio::time::timeout(POST_TIMEOUT, target.record_event(&event)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("the target did not record an event within {}s", POST_TIMEOUT.as_secs())),
        };
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(pool = %pool, "events are recorded on the target again");
            }
            Ok(()) => {}
            Err(why) if failing => tracing::debug!(pool = %pool, reason = event.reason_code(), "event not recorded: {why}"),
            Err(why) => {
                failing = true;
                tracing::warn!(pool = %pool, reason = event.reason_code(), "cannot record an event on the target; the pool decides and acts as before (further failures at debug level): {why}");
            }
        }
    }
}

/// What `r` means for the pool's events; see the module's notes.
fn classify(r: &DecisionRecord, min: u32, max: u32, now: i64) -> Happened {
    if r.mode != Mode::Live {
        return Happened::Nothing;
    }
    let current = r.running + r.booting;
    let event = |kind, to, cause: &str, reason: String| TargetEvent { kind, from: current, to, cause: cause.to_owned(), reason, at: now };
    if let Some(a) = &r.action {
        let event = |kind, reason| TargetEvent { kind, from: a.from, to: a.to, cause: a.cause.clone(), reason, at: now };
        let refusal = |kind| Refusal { kind, from: a.from, to: a.to, cause: a.cause.clone(), by: String::new() };
        return match &a.outcome {
            Outcome::Done => Happened::Acted(event(TargetEventKind::Scaled, a.reason.clone())),
            Outcome::Failed(why) => Happened::Refused(refusal(TargetEventKind::ScaleFailed), event(TargetEventKind::ScaleFailed, why.clone())),
            Outcome::AwaitingApproval => {
                let reason = format!(
                    "{}; a change of {} members waits for an operator (POST /pools/{}/approve/{{seq}}, the pending decision is in GET /pools/{})",
                    a.reason,
                    a.from.abs_diff(a.to),
                    r.pool,
                    r.pool
                );
                Happened::Refused(refusal(TargetEventKind::AwaitingApproval), event(TargetEventKind::AwaitingApproval, reason))
            }
            Outcome::Pending | Outcome::NotTaken | Outcome::AwaitingReview => Happened::Nothing,
        };
    }
    let Some(wanted) = r.consensus.desired.map(|d| round_desired(d).clamp(min, max)) else { return Happened::Nothing };
    if wanted == current {
        return Happened::Content;
    }
    if r.desired != current {
        return Happened::Nothing;
    }
    // What the cost rules let through: feasibility comes after them.
    let after_cost = r.limited.as_ref().map_or(r.proposed, |l| l.wanted);
    let refusing = |verdict: &str| r.cost.iter().find(|c| c.verdict == verdict);
    let blame = refusing("deny").or_else(|| refusing("error")).or_else(|| r.cost.iter().rev().find(|c| c.verdict == "clamp"));
    if after_cost == current
        && let Some(rule) = blame
    {
        let refusal = Refusal { kind: TargetEventKind::CostDenied, from: current, to: wanted, cause: "policy".into(), by: rule.policy.clone() };
        let reason = format!("{} ({}): {}", rule.policy, rule.verdict, rule.reason);
        return Happened::Refused(refusal, event(TargetEventKind::CostDenied, wanted, "policy", reason));
    }
    if let Some(l) = &r.limited
        && l.to == current
    {
        let refusal = Refusal { kind: TargetEventKind::NoRoom, from: current, to: wanted, cause: "policy".into(), by: "feasibility".into() };
        return Happened::Refused(refusal, event(TargetEventKind::NoRoom, wanted, "policy", l.why.clone()));
    }
    Happened::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::record::{ActionRecord, ConsensusResult, CostResult, Limited};

    fn record(running: u32, wanted: f64, desired: u32) -> DecisionRecord {
        DecisionRecord {
            consensus: ConsensusResult { policy: "single".into(), desired: Some(wanted), confidence: 1.0, explanation: "queue-depth decides alone".into() },
            ..DecisionRecord::sample("web", 7, running, desired)
        }
    }

    fn acted(mut r: DecisionRecord, outcome: Outcome) -> DecisionRecord {
        r.action = Some(ActionRecord { from: r.running, to: r.desired, cause: "policy".into(), reason: "queue-depth decides alone".into(), outcome });
        r
    }

    fn deny(policy: &str, reason: &str) -> CostResult {
        CostResult { policy: policy.into(), verdict: "deny".into(), clamp_to: None, cost_per_hour: Some(3.0), reason: reason.into(), placement: None }
    }

    fn kind(h: &Happened) -> Option<TargetEventKind> {
        match h {
            Happened::Acted(e) | Happened::Refused(_, e) => Some(e.kind),
            _ => None,
        }
    }

    #[test]
    fn actions_refusals_and_holds() {
        let done = classify(&acted(record(1, 3.0, 3), Outcome::Done), 1, 20, 5);
        let Happened::Acted(e) = &done else { panic!("{done:?}") };
        assert_eq!((e.from, e.to, e.reason_code(), e.at), (1, 3, "ScaledUp", 5));
        let failed = classify(&acted(record(3, 1.0, 1), Outcome::Failed("paused".into())), 1, 20, 5);
        let Happened::Refused(_, e) = &failed else { panic!("{failed:?}") };
        assert_eq!((e.kind, e.reason.as_str()), (TargetEventKind::ScaleFailed, "paused"));
        assert_eq!(kind(&classify(&acted(record(1, 9.0, 9), Outcome::AwaitingApproval), 1, 20, 5)), Some(TargetEventKind::AwaitingApproval));

        let mut denied = record(3, 8.0, 3);
        denied.cost = vec![deny("budget-cap", "8 members cost 8.00/h, over 3.00/h")];
        let h = classify(&denied, 1, 20, 5);
        let Happened::Refused(refusal, e) = &h else { panic!("{h:?}") };
        assert_eq!((refusal.by.as_str(), e.from, e.to), ("budget-cap", 3, 8));
        assert!(e.message().starts_with("3 → 8 by policy refused by a cost rule: budget-cap (deny): 8 members"), "{}", e.message());

        let mut full = record(2, 8.0, 2);
        full.proposed = 2;
        full.limited = Some(Limited { wanted: 8, to: 2, why: "GPU memory: 5.0 free".into() });
        assert_eq!(kind(&classify(&full, 1, 20, 5)), Some(TargetEventKind::NoRoom));

        // A guardrail holding, a content pool, a dry run.
        assert_eq!(classify(&record(3, 8.0, 3), 1, 20, 5), Happened::Nothing);
        assert_eq!(classify(&record(3, 2.6, 3), 1, 20, 5), Happened::Content);
        assert_eq!(classify(&record(20, 30.0, 20), 1, 20, 5), Happened::Content, "past max is what is there");
        let mut dry = acted(record(1, 3.0, 3), Outcome::NotTaken);
        dry.mode = Mode::DryRun;
        assert_eq!(classify(&dry, 1, 20, 5), Happened::Nothing);
    }

    /// A target that keeps what it is told.
    #[derive(Default)]
    struct Notes(std::sync::Mutex<Vec<TargetEvent>>);

    #[async_trait::async_trait]
    impl Target for Notes {
        fn kind(&self) -> &'static str {
            "notes"
        }
        async fn reconcile(&self) -> Result<scalewise_providers::PoolState, scalewise_providers::ProviderError> {
            Ok(Default::default())
        }
        async fn state(&self) -> Result<scalewise_providers::PoolState, scalewise_providers::ProviderError> {
            Ok(Default::default())
        }
        async fn scale_to(&self, n: u32) -> Result<scalewise_providers::ScaleOutcome, scalewise_providers::ProviderError> {
            Ok(scalewise_providers::ScaleOutcome { capacity: n, ..Default::default() })
        }
        fn records_events(&self) -> bool {
            true
        }
        async fn record_event(&self, event: &TargetEvent) -> Result<(), scalewise_providers::ProviderError> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_lasting_refusal_is_told_once_and_again_after_the_pool_was_content() {
        let notes = Arc::new(Notes::default());
        let target: Arc<dyn Target> = notes.clone();
        let mut announcer = Announcer::new("web", &target);
        let mut denied = record(3, 8.0, 3);
        denied.cost = vec![deny("budget-cap", "spent 1.00")];
        for i in 0..5 {
            denied.cost[0].reason = format!("spent {i}.00");
            announcer.observe(&denied, 1, 20, i);
        }
        announcer.observe(&record(3, 8.0, 3), 1, 20, 5); // a guardrail holds: still refused
        announcer.observe(&denied, 1, 20, 6);
        announcer.observe(&record(3, 3.0, 3), 1, 20, 7); // content
        announcer.observe(&denied, 1, 20, 8);
        let mut other = denied.clone();
        other.consensus.desired = Some(9.0);
        announcer.observe(&other, 1, 20, 9);
        announcer.observe(&acted(record(3, 4.0, 4), Outcome::Done), 1, 20, 10);
        drop(announcer);
        for _ in 0..100 {
            if notes.0.lock().unwrap().len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let told: Vec<(i64, &str)> = notes.0.lock().unwrap().iter().map(|e| (e.at, e.reason_code())).collect();
        assert_eq!(told, [(0, "ScaleRefused"), (8, "ScaleRefused"), (9, "ScaleRefused"), (10, "ScaledUp")]);
    }
}
