//! A pool's candidate set: evaluated in shadow on every live tick, its
//! divergence from the serving set counted, promoted or rolled back on an
//! operator's word.
//!
//! Why here, in the pool's task: the candidate must see exactly the inputs
//! the serving set saw (the same metric windows, capacity, recent actions,
//! headroom and guardrail memory) in the same sandbox, and a promotion must
//! fall between two ticks. The pool's task is the one place where both
//! hold without a lock: it evaluates the candidate right after the serving
//! set, on copies of the same input, and takes promote and rollback as
//! commands between ticks, so no tick ever runs half one set and half the
//! other. The candidate's policy states live here, apart from the pool's
//! (its memory is never touched by the shadow); on promotion they become
//! the pool's, so a stateful strategy carries on where its shadow was.

use std::collections::BTreeMap;

use serde::Serialize;

use super::PoolLoop;
use crate::decide::memory::Promotion;
use crate::decide::pipeline::{self, PoolPlan, TickInput};
use crate::decide::record::{DecisionRecord, ShadowDecision};

/// How often, and how far, the candidate would have decided otherwise.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Divergence {
    /// The candidate set, in words (`strategies [...] consensus ...`).
    pub candidate: String,
    /// Counting since (ms since the Unix epoch).
    pub since: i64,
    pub ticks: u64,
    /// Ticks where the candidate's desired capacity differed.
    pub differed: u64,
    /// Of those, where it wanted more, and where less.
    pub higher: u64,
    pub lower: u64,
    /// Mean and largest difference in members, over all ticks.
    pub mean_abs_diff: f64,
    pub max_abs_diff: u32,
    /// The newest tick's difference (candidate − serving).
    pub last_diff: i64,
}

impl Divergence {
    fn new(plan: &PoolPlan, since: i64) -> Self {
        Self { candidate: plan.describe(), since, ..Self::default() }
    }

    fn observe(&mut self, serving: u32, candidate: u32) {
        let diff = i64::from(candidate) - i64::from(serving);
        self.ticks += 1;
        self.last_diff = diff;
        if diff != 0 {
            self.differed += 1;
            if diff > 0 { self.higher += 1 } else { self.lower += 1 }
        }
        let abs = diff.unsigned_abs() as u32;
        self.max_abs_diff = self.max_abs_diff.max(abs);
        self.mean_abs_diff += (f64::from(abs) - self.mean_abs_diff) / self.ticks as f64;
    }
}


/// The names and versions in a set of votes: `queue-depth v3, one v2`.
fn versions(votes: &[crate::decide::record::ExpertVote]) -> String {
    votes.iter().map(|v| format!("{} {}", v.expert, v.version.map_or("(not loaded)".to_owned(), |n| format!("v{n}")))).collect::<Vec<_>>().join(", ")
}

/// What the candidate machinery keeps between ticks.
#[derive(Default)]
pub struct Shadow {
    /// The candidate's policy states.
    states: BTreeMap<String, Vec<u8>>,
    pub divergence: Option<Divergence>,
    /// The set a promotion replaced: what a rollback returns to.
    pub previous: Option<Box<PoolPlan>>,
    /// Live ticks running on which the promoted set faulted, and the first fault.
    faulted: (u32, Option<String>),
    /// Why the promoted set is to be rolled back once this tick is recorded.
    pub rollback_due: Option<String>,
}

/// A vote's fault, if it is one: a trap, a timeout, nonsense, a policy not
/// loaded, or a fallback to the previous version; a decline is a policy's
/// own choice, not a fault.
fn fault(v: &crate::decide::record::ExpertVote) -> Option<String> {
    if let Some(f) = &v.fallback {
        return Some(format!("{}: {f}", v.expert));
    }
    v.abstained.as_ref().filter(|a| !a.starts_with("policy declined")).map(|a| format!("{}: {a}", v.expert))
}

impl Shadow {
    /// Take a reload's plan: a candidate that changed starts its count
    /// (and its states) afresh; one that went is forgotten.
    pub fn reconfigured(&mut self, plan: &PoolPlan, now: i64) {
        match &plan.candidate {
            Some(c) if self.divergence.as_ref().is_some_and(|d| d.candidate == c.describe()) => {}
            Some(c) => {
                self.states.clear();
                self.divergence = Some(Divergence::new(c, now));
            }
            None => {
                self.states.clear();
                self.divergence = None;
            }
        }
    }
}

impl PoolLoop {
    /// Evaluate the candidate on the tick's input (which the serving set
    /// has decided on as `record`), and put its answer in the record.
    pub(super) fn shadow_tick(&mut self, input: TickInput<'_>, before: &crate::decide::memory::PoolMemory, record: &mut DecisionRecord) {
        let Some(candidate) = self.s.plan.candidate.as_deref() else { return };
        let decided: ShadowDecision = pipeline::shadow(self.experts.as_ref(), candidate, input, before, &mut self.shadow.states);
        let now = record.at;
        self.shadow.divergence.get_or_insert_with(|| Divergence::new(candidate, now)).observe(record.desired, decided.desired);
        record.shadow = Some(decided);
    }

    /// After a promotion, with `guardrails.rollback_after_faults` set: count
    /// the live ticks running on which the promoted set faulted, and roll
    /// back by itself when they reach it.
    pub(super) fn watch_promotion(&mut self, record: &DecisionRecord) {
        let limit = self.s.plan.guardrails.rollback_after_faults;
        if limit == 0 || self.shadow.previous.is_none() || record.mode != crate::decide::record::Mode::Live {
            return;
        }
        match record.votes.iter().find_map(fault) {
            Some(f) => {
                self.shadow.faulted.0 += 1;
                self.shadow.faulted.1.get_or_insert(f);
            }
            None => self.shadow.faulted = (0, None),
        }
        if self.shadow.faulted.0 >= limit {
            let (n, first) = std::mem::take(&mut self.shadow.faulted);
            self.shadow.rollback_due = Some(format!(
                "automatic rollback: the promoted set faulted on {n} ticks running (guardrails.rollback_after_faults), first {}",
                first.unwrap_or_default()
            ));
        }
    }

    /// The rollback [`watch_promotion`](Self::watch_promotion) asked for.
    pub(super) async fn auto_rollback(&mut self, why: &str) {
        tracing::warn!(pool = %self.s.plan.id, "{why}");
        if let Err(e) = self.rollback_because(why).await {
            tracing::warn!(pool = %self.s.plan.id, "{e}");
        }
    }

    /// Promote the candidate: it serves from the next tick, with the
    /// states its shadow built; the set it replaces is kept for a
    /// rollback. Journalled as a record of its own.
    pub(super) async fn promote(&mut self) -> Result<String, String> {
        let Some(candidate) = self.s.plan.candidate.take() else {
            return Err(format!("pool `{}` has no candidate to promote; give it a `candidate` in the config and reload", self.s.plan.id));
        };
        let shadow_versions = self.handle.last(|r| r.shadow.as_ref().map(|s| versions(&s.votes))).flatten().unwrap_or_default();
        let serving_versions = self.handle.last(|r| versions(&r.votes)).unwrap_or_default();
        let previous = self.swap_in(&candidate);
        let states = std::mem::take(&mut self.shadow.states);
        self.memory.states.retain(|k, _| !states.contains_key(k));
        self.memory.states.extend(states);
        let note = format!("promoted the candidate {} ({shadow_versions}) over {} ({serving_versions}); POST /pools/{}/rollback returns to it", candidate.describe(), previous.describe(), self.s.plan.id);
        // In the pool's memory, so that it holds across a restart.
        self.memory.promoted = Some(Promotion { serving: candidate.set(), previous: previous.set() });
        self.shadow.previous = Some(previous);
        self.shadow.divergence = None;
        self.shadow.faulted = (0, None);
        self.record_lifecycle("promote", note.clone()).await;
        Ok(note)
    }

    /// Return to the set the last promotion replaced; the set rolled back
    /// goes on in shadow as the candidate.
    pub(super) async fn rollback(&mut self) -> Result<String, String> {
        self.rollback_because("an operator's rollback").await
    }

    async fn rollback_because(&mut self, why: &str) -> Result<String, String> {
        self.shadow.faulted = (0, None);
        let Some(previous) = self.shadow.previous.take() else {
            return Err(format!("pool `{}` has no previous version to roll back to: nothing was promoted on it since the host started", self.s.plan.id));
        };
        let serving_versions = self.handle.last(|r| versions(&r.votes)).unwrap_or_default();
        let demoted = self.swap_in(&previous);
        self.memory.promoted = None;
        let note = format!("rolled back to {} from {} ({serving_versions}), which goes on in shadow: {why}", previous.describe(), demoted.describe());
        let now = self.clock.now_ms();
        self.shadow.states.clear();
        self.shadow.divergence = Some(Divergence::new(&demoted, now));
        self.s.plan.candidate = Some(demoted);
        self.record_lifecycle("rollback", note.clone()).await;
        Ok(note)
    }

    /// A promotion holds across a reload that leaves the file's serving set
    /// as it was (the set the promotion replaced): the reload's other
    /// changes apply around the promoted set. A reload whose file names
    /// another serving set supersedes the promotion (nothing to roll back
    /// to then, unless the file names the promoted set itself).
    pub(super) fn hold_promotion(&mut self, next: &mut PoolPlan) {
        let Some(previous) = &self.shadow.previous else { return };
        let same = |a: &PoolPlan, b: &PoolPlan| a.strategies == b.strategies && a.consensus == b.consensus && a.cost_rules == b.cost_rules;
        if same(next, previous) {
            next.strategies = self.s.plan.strategies.clone();
            next.consensus = self.s.plan.consensus.clone();
            next.cost_rules = self.s.plan.cost_rules.clone();
        } else if !same(next, &self.s.plan) {
            tracing::info!(pool = %self.s.plan.id, "the reloaded config names another serving set: the promotion is superseded");
            self.shadow.previous = None;
            self.memory.promoted = None;
        }
    }

    /// At start: a promotion the journal's memory records holds across the
    /// restart, where the config still names the set it replaced as the
    /// serving one (what the file says has not moved on since); the
    /// promoted set serves, a rollback returns to the file's set, and a
    /// candidate that is the promoted set itself is dropped (it serves).
    /// A config that names another serving set supersedes it, as a reload
    /// does.
    pub(super) fn restore_promotion(&mut self) -> Option<String> {
        let p = self.memory.promoted.clone()?;
        if !self.s.plan.serves(&p.previous) {
            self.memory.promoted = None;
            return Some(format!("the promotion recorded in the journal ({}) is superseded: the config names another serving set", self.s.plan.with_set(&p.serving).describe()));
        }
        let promoted = self.s.plan.with_set(&p.serving);
        if self.s.plan.candidate.as_deref().is_some_and(|c| c.serves(&p.serving)) {
            self.s.plan.candidate = None;
        }
        let previous = self.swap_in(&promoted);
        let note = format!("the promotion of {} over {} holds across the restart; POST /pools/{}/rollback returns to it", promoted.describe(), previous.describe(), self.s.plan.id);
        self.shadow.previous = Some(previous);
        Some(note)
    }

    /// Make `next`'s policies the serving ones; returns the set they replace.
    fn swap_in(&mut self, next: &PoolPlan) -> Box<PoolPlan> {
        let plan = &mut self.s.plan;
        let old = Box::new(PoolPlan { candidate: None, ..plan.clone() });
        plan.strategies = next.strategies.clone();
        plan.consensus = next.consensus.clone();
        plan.cost_rules = next.cost_rules.clone();
        let used: std::collections::BTreeSet<&str> = plan.policies().collect();
        self.memory.states.retain(|k, _| used.contains(k.as_str()));
        old
    }

    pub(super) async fn record_lifecycle(&mut self, cause: &str, note: String) {
        let now = self.clock.now_ms();
        let state = self.s.target.state().await.unwrap_or_default();
        tracing::info!(pool = %self.s.plan.id, cause, "{note}");
        let record = pipeline::lifecycle(&self.s.plan, &mut self.memory, now, state.running(), state.booting(), cause, note);
        self.persist(&record).await;
        self.finish(record, Some(state)).await;
    }
}
