//! Replaying a pool's own history from its journal: each recorded policy
//! decision taken again by the serving set, and a candidate set's what-if
//! on the same inputs (`scalewise simulate --from-journal`).
//!
//! Why step by step from the journal's memory, not a free run: the
//! question is "would this set have decided what the pool decided, and what
//! would the candidate have done instead?", on what really happened. Each
//! decision is taken from exactly what the live loop had: the pool's memory
//! of the frame before it (cooldowns, stabilization, books, policy states),
//! changed as the record says the loop changed it, and the windows and
//! headroom the record keeps ([`RecordedInputs`]). The same
//! [`pipeline::decide`] runs, so a step that reproduces shows the pipeline
//! and the policies are what decided; one that does not says where it parted
//! (the inputs' fingerprint, a strategy's vote, the consensus, a cost
//! rule, the guardrails), which is what an operator needs to trust a replay.
//!
//! The candidate decides as it does in shadow on the live host
//! ([`pipeline::shadow`]): from the pool's real memory (its cooldowns count
//! the pool's real actions), with policy states of its own carried from step
//! to step. It never changes what the pool had, so what it is compared with
//! is what the serving set did. (What the pool's demand would then have
//! been is another question: a trace simulation answers it.)
//!
//! Under a promotion (the pool's memory records it), the promoted set is
//! what served, and what the replay decides with, while the config still
//! names the set it replaced.
//!
//! Operator changes (a manual scale, an approval) and lifecycle records
//! (a reload, a promotion) are not policy decisions: they are counted and
//! listed, and the memory they wrote is where the next decision starts.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::Serialize;

use scalewise_sdk::{Action, MetricWindow};

use crate::decide::feasibility::Headroom;
use crate::decide::inputs::InputReader;
use crate::decide::memory::PoolMemory;
use crate::decide::pipeline::{self, Experts, PoolPlan, TickInput};
use crate::decide::record::{DecisionRecord, Mode};
use crate::journal::{Journal, JournalError, Written};

/// A set to decide with: its plan and where its policies are.
pub struct ReplaySet<'a> {
    pub plan: &'a PoolPlan,
    pub experts: &'a dyn Experts,
}

/// What to replay.
pub struct Replay<'a> {
    pub serving: ReplaySet<'a>,
    pub candidate: Option<ReplaySet<'a>>,
    /// Only decisions with a seq at least this.
    pub from_seq: u64,
    /// Only decisions with a seq at most this.
    pub to_seq: u64,
}

/// One policy decision, recorded and replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub seq: u64,
    pub at: i64,
    pub mode: Mode,
    pub running: u32,
    pub booting: u32,
    /// What the pool decided (its desired capacity).
    pub recorded: u32,
    /// What the serving set decides on the replay.
    pub replayed: u32,
    /// Whether the replay took the same decision: the same inputs, votes,
    /// consensus, cost verdicts, clamps and desired capacity.
    pub reproduced: bool,
    /// Where the replay parted from the record, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differs: Option<String>,
    /// What the candidate set would have decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<u32>,
    /// What the live host's shadow recorded for its candidate, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_recorded: Option<u32>,
}

/// A decision the replay could not take again, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub seq: u64,
    pub why: String,
}

/// How the candidate compares with what the pool decided.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CandidateSummary {
    pub steps: u64,
    /// Steps where it would have decided otherwise.
    pub differed: u64,
    pub higher: u64,
    pub lower: u64,
    /// Mean and largest |candidate − recorded| over every step.
    pub mean_abs_diff: f64,
    pub max_abs_diff: u32,
    /// Members × hours each would have asked for over the replayed span.
    pub recorded_member_hours: f64,
    pub candidate_member_hours: f64,
    /// Steps where the replayed candidate and the live shadow's record agree,
    /// of those where the live host recorded one.
    pub shadow_agreed: u64,
    pub shadow_recorded: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub pool: String,
    /// Decisions in the journal for the pool in the span, of every kind.
    pub records: u64,
    pub replayed: u64,
    pub reproduced: u64,
    pub differed: u64,
    pub skipped: u64,
    /// Operator changes (manual scales, approvals), not replayed.
    pub operator: u64,
    /// Lifecycle records in the span (reloads, promotions, rollbacks):
    /// `seq: what changed`. Decisions before one were taken by what it replaced.
    pub lifecycle: Vec<String>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
    /// The first few decisions skipped, with why.
    pub skipped_first: Vec<Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<CandidateSummary>,
}

/// How many skipped decisions are listed.
const SKIPPED_LISTED: usize = 20;

/// Replay `pool`'s history in `journal`, calling `step` for each decision
/// taken again, oldest first.
pub fn replay(journal: &Journal, pool: &str, r: &Replay<'_>, mut step: impl FnMut(&Step)) -> Result<ReplaySummary, JournalError> {
    let mut run = Run { summary: ReplaySummary { pool: pool.into(), ..Default::default() }, ..Default::default() };
    if r.candidate.is_some() {
        run.summary.candidate = Some(CandidateSummary::default());
    }
    journal.history(pool, |w| {
        run.frame(r, w, &mut step);
        ControlFlow::Continue(())
    })?;
    if let Some(c) = run.summary.candidate.as_mut().filter(|c| c.steps > 0) {
        c.mean_abs_diff = run.abs_diff_sum / c.steps as f64;
    }
    Ok(run.summary)
}

#[derive(Default)]
struct Run {
    summary: ReplaySummary,
    windows: InputReader,
    /// The pool's memory after the last frame, and its policy states.
    memory: Option<PoolMemory>,
    states: Option<BTreeMap<String, Vec<u8>>>,
    candidate_states: BTreeMap<String, Vec<u8>>,
    /// The last decision seen (an outcome repeats its intent's seq).
    last_seq: u64,
    /// The previous replayed step, for member-hours.
    previous: Option<(i64, u32, Option<u32>)>,
    abs_diff_sum: f64,
}

impl Run {
    fn frame(&mut self, r: &Replay<'_>, w: Written, step: &mut impl FnMut(&Step)) {
        if let Some(rec) = &w.record
            && rec.seq != self.last_seq
        {
            self.last_seq = rec.seq;
            self.decision(r, rec, step);
        }
        // What this frame wrote is where the next decision starts.
        if let Some(m) = w.memory {
            self.memory = Some(m);
        }
        if let Some(s) = w.states {
            self.states = Some(s);
        }
    }

    fn decision(&mut self, r: &Replay<'_>, rec: &DecisionRecord, step: &mut impl FnMut(&Step)) {
        // The windows are a chain of changes: read every record's, even
        // outside the span, to keep it.
        let windows = rec.inputs.as_ref().map(|i| self.windows.windows(rec.seq, i));
        if rec.seq < r.from_seq || rec.seq > r.to_seq {
            return;
        }
        let s = &mut self.summary;
        s.records += 1;
        s.first_seq.get_or_insert(rec.seq);
        s.first_at.get_or_insert(rec.at);
        s.last_seq = Some(rec.seq);
        s.last_at = Some(rec.at);
        if let Some(note) = &rec.lifecycle {
            s.lifecycle.push(format!("{}: {note}", rec.seq));
            return;
        }
        let (Some(inputs), Some(windows)) = (&rec.inputs, windows) else {
            if rec.votes.is_empty() {
                s.operator += 1;
            } else {
                self.skip(rec.seq, "recorded without its inputs (by a host older than replays, or with no journal inputs)".into());
            }
            return;
        };
        let metrics = match windows {
            Ok(m) => m,
            Err(why) => return self.skip(rec.seq, why),
        };
        // The pool's first decision starts from nothing.
        let first = (rec.seq == 1).then(PoolMemory::default);
        let Some(mut memory) = inputs.began_with.clone().or_else(|| self.memory.clone()).or(first) else {
            return self.skip(rec.seq, "the journal no longer holds the pool's memory before it (retention dropped it)".into());
        };
        let Some(states) = self.states.clone().or_else(|| (rec.seq == 1).then(BTreeMap::new)) else {
            return self.skip(rec.seq, "the journal no longer holds the policy states it started from (retention dropped them); replay resumes once they are written again".into());
        };
        memory.states = states;
        let recent: Vec<Action> = memory.guard.recent();
        let candidate = r.candidate.as_ref().map(|c| pipeline::shadow(c.experts, c.plan, tick(c.plan, rec, &metrics, &recent, inputs.headroom.clone()), &memory, &mut self.candidate_states).desired);
        // Under a promotion (the journal's memory says which), the promoted
        // set served, where the config still names the one it replaced.
        let promoted = memory.promoted.as_ref().filter(|p| r.serving.plan.serves(&p.previous)).map(|p| r.serving.plan.with_set(&p.serving));
        let serving = promoted.as_ref().unwrap_or(r.serving.plan);
        let replayed = pipeline::decide(r.serving.experts, tick(serving, rec, &metrics, &recent, inputs.headroom.clone()), &mut memory);
        let differs = first_difference(rec, &replayed);
        let st = Step {
            seq: rec.seq,
            at: rec.at,
            mode: rec.mode,
            running: rec.running,
            booting: rec.booting,
            recorded: rec.desired,
            replayed: replayed.desired,
            reproduced: differs.is_none(),
            differs,
            candidate,
            shadow_recorded: rec.shadow.as_ref().map(|s| s.desired),
        };
        self.count(&st);
        step(&st);
    }

    fn skip(&mut self, seq: u64, why: String) {
        self.summary.skipped += 1;
        if self.summary.skipped_first.len() < SKIPPED_LISTED {
            self.summary.skipped_first.push(Skipped { seq, why });
        }
    }

    fn count(&mut self, st: &Step) {
        let s = &mut self.summary;
        s.replayed += 1;
        if st.reproduced { s.reproduced += 1 } else { s.differed += 1 }
        if let (Some(c), Some(cand)) = (s.candidate.as_mut(), st.candidate) {
            c.steps += 1;
            let diff = cand.abs_diff(st.recorded);
            if diff > 0 {
                c.differed += 1;
            }
            if cand > st.recorded {
                c.higher += 1;
            } else if cand < st.recorded {
                c.lower += 1;
            }
            c.max_abs_diff = c.max_abs_diff.max(diff);
            self.abs_diff_sum += f64::from(diff);
            if let Some(shadow) = st.shadow_recorded {
                c.shadow_recorded += 1;
                c.shadow_agreed += u64::from(shadow == cand);
            }
            // Each decision holds until the next one.
            if let Some((at, recorded, Some(candidate))) = self.previous {
                let hours = (st.at - at).max(0) as f64 / 3_600_000.0;
                c.recorded_member_hours += f64::from(recorded) * hours;
                c.candidate_member_hours += f64::from(candidate) * hours;
            }
        }
        self.previous = Some((st.at, st.recorded, st.candidate));
    }
}

/// A recorded decision's input, for `plan`.
fn tick<'a>(plan: &'a PoolPlan, rec: &DecisionRecord, metrics: &[MetricWindow], recent: &[Action], headroom: Option<Headroom>) -> TickInput<'a> {
    TickInput {
        plan,
        now: rec.at,
        mode: rec.mode,
        running: rec.running,
        booting: rec.booting,
        metrics: metrics.to_vec(),
        readings: rec.metrics.clone(),
        recent: recent.to_vec(),
        headroom,
        // The advisor's vote as recorded: the answer replays, the model is
        // not asked again.
        advice: rec.advisor.as_ref().and_then(|a| a.ballot.clone()),
    }
}

/// Where a replayed decision parts from the recorded one, in words; `None`
/// when it is the same decision.
pub fn first_difference(rec: &DecisionRecord, replayed: &DecisionRecord) -> Option<String> {
    if rec.input_digest != replayed.input_digest {
        return Some(format!(
            "the inputs differ (fingerprint {} recorded, {} replayed): the windows or policy states the journal holds are not what the decision saw",
            rec.input_digest, replayed.input_digest
        ));
    }
    if rec.votes.len() != replayed.votes.len() || rec.votes.iter().zip(&replayed.votes).any(|(a, b)| a.expert != b.expert) {
        let names = |r: &DecisionRecord| r.votes.iter().map(|v| v.expert.as_str()).collect::<Vec<_>>().join(", ");
        return Some(format!("other strategies: [{}] recorded, [{}] replayed", names(rec), names(replayed)));
    }
    for (a, b) in rec.votes.iter().zip(&replayed.votes) {
        let desired = |v: &crate::decide::record::ExpertVote| v.proposal.as_ref().map(|p| p.desired);
        if desired(a) != desired(b) || a.abstained.is_some() != b.abstained.is_some() {
            let show = |v: &crate::decide::record::ExpertVote| match (&v.proposal, &v.abstained) {
                (Some(p), _) => format!("{}", p.desired),
                (None, Some(why)) => format!("abstained ({why})"),
                (None, None) => "nothing".into(),
            };
            return Some(format!("strategy `{}`: {} recorded, {} replayed", a.expert, show(a), show(b)));
        }
    }
    if rec.consensus.desired != replayed.consensus.desired || rec.consensus.policy != replayed.consensus.policy {
        return Some(format!(
            "consensus: {} {:?} recorded, {} {:?} replayed",
            rec.consensus.policy, rec.consensus.desired, replayed.consensus.policy, replayed.consensus.desired
        ));
    }
    let verdicts = |r: &DecisionRecord| r.cost.iter().map(|c| format!("{} {} {:?}", c.policy, c.verdict, c.clamp_to)).collect::<Vec<_>>().join("; ");
    if verdicts(rec) != verdicts(replayed) {
        return Some(format!("cost rules: [{}] recorded, [{}] replayed", verdicts(rec), verdicts(replayed)));
    }
    if rec.proposed != replayed.proposed || rec.clamps != replayed.clamps || rec.desired != replayed.desired {
        let clamps = |r: &DecisionRecord| r.clamps.iter().map(|c| format!("{} {}→{}", c.guardrail, c.from, c.to)).collect::<Vec<_>>().join(", ");
        return Some(format!(
            "guardrails: proposed {} [{}] desired {} recorded, proposed {} [{}] desired {} replayed",
            rec.proposed,
            clamps(rec),
            rec.desired,
            replayed.proposed,
            clamps(replayed),
            replayed.desired
        ));
    }
    None
}

pub mod prometheus;

#[cfg(test)]
mod tests;
