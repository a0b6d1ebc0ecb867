//! The nouns of one decision, named once: what the journal stores, the API
//! returns and the dashboard draws.

use serde::{Deserialize, Serialize};

use super::guardrails::Clamp;
use scalewise_sdk::{Gauge, Placement, Proposal};

/// One metric as the strategies saw it this tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricReading {
    pub name: String,
    pub samples: usize,
    /// The newest value, if any.
    pub last: Option<f64>,
    /// Why the series is missing or short, if it is.
    pub error: Option<String>,
}

/// One expert's part in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExpertVote {
    pub expert: String,
    pub weight: f64,
    /// The version that answered.
    pub version: Option<u64>,
    pub proposal: Option<Proposal>,
    /// Why the expert abstained, if it did: it declined (no opinion), or
    /// it failed (an error, a timeout, a trap); `declined` says which.
    pub abstained: Option<String>,
    /// The abstention was the policy's own choice, not a fault.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declined: bool,
    /// Set when the serving version faulted and the previous one answered.
    pub fallback: Option<String>,
    /// What the expert reported about itself (its forecast error, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gauges: Vec<Gauge>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsensusResult {
    /// The consensus policy, or `single` when one strategy decides alone.
    pub policy: String,
    pub desired: Option<f64>,
    pub confidence: f64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostResult {
    pub policy: String,
    /// `allow`, `clamp`, `deny`, or `error`.
    pub verdict: String,
    pub clamp_to: Option<u32>,
    pub cost_per_hour: Option<f64>,
    pub reason: String,
    /// How this rule would buy the capacity, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// A scale-up cut to what the target can hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Limited {
    /// What the cost rules let through.
    pub wanted: u32,
    /// What fits.
    pub to: u32,
    /// The tightest limit, in words ("host memory: ...").
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Acts.
    Live,
    /// Decides and records, never acts.
    DryRun,
    /// Paused by an operator: records, never acts.
    Paused,
    /// Another replica holds the leader lease: decides, never acts.
    Standby,
}

impl Mode {
    /// The one rule for how a pool's policy decisions are taken. A dry run
    /// is configured and outranks everything; an operator's pause outranks
    /// the lease, so a paused pool reads as paused on every replica.
    /// (An operator's own change is always live: see
    /// [`operator`](super::pipeline::operator).)
    pub fn of(dry_run: bool, paused: bool, standby: bool) -> Mode {
        if dry_run {
            Mode::DryRun
        } else if paused {
            Mode::Paused
        } else if standby {
            Mode::Standby
        } else {
            Mode::Live
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Outcome {
    /// Recorded before the target was called: the intent.
    Pending,
    Done,
    Failed(String),
    /// Held for an operator's approval.
    AwaitingApproval,
    /// Held while the advisor reviews it (at most its call's timeout).
    AwaitingReview,
    /// Not taken: dry run or paused.
    NotTaken,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionRecord {
    pub from: u32,
    pub to: u32,
    /// `policy`, `manual` or `approval`.
    pub cause: String,
    pub reason: String,
    pub outcome: Outcome,
}

/// Everything about one tick of one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    pub pool: String,
    pub seq: u64,
    pub at: i64,
    pub mode: Mode,
    /// A 64-bit fingerprint of the inputs the policies saw (metrics,
    /// capacity, states), in hex.
    pub input_digest: String,
    pub running: u32,
    pub booting: u32,
    pub metrics: Vec<MetricReading>,
    pub votes: Vec<ExpertVote>,
    pub consensus: ConsensusResult,
    pub cost: Vec<CostResult>,
    /// How the cost rules would buy the capacity (kind, on demand, spot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Set when a scale-up did not fit the target (memory, CPU, GPU
    /// memory, quota) and was cut to what fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited: Option<Limited>,
    /// The consensus after the cost rules and feasibility, rounded: what
    /// the guardrails got.
    pub proposed: u32,
    pub clamps: Vec<Clamp>,
    /// What the pool should hold after this decision.
    pub desired: u32,
    /// Budget alerts crossed at this tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    pub action: Option<ActionRecord>,
    /// What the pool's candidate set would have decided on the same
    /// inputs, in shadow (never acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowDecision>,
    /// A change to how the pool decides (a promotion, a rollback), as a
    /// record of its own in the sequence: what changed, by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// What the policies were given (metric windows, headroom), kept
    /// compactly so that the decision can be taken again
    /// (`scalewise simulate --from-journal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<super::inputs::RecordedInputs>,
    /// The advisor's part: the vote it cast (also among `votes`), its
    /// review of the change, the questions asked and the answers heard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisor: Option<AdvisorRecord>,
}

#[cfg(test)]
impl DecisionRecord {
    /// A plain decision for tests: `running` members, a single policy's
    /// consensus at `desired` and the guardrails letting it through, no
    /// votes and no action. Tests change what they look at with struct
    /// update syntax.
    pub fn sample(pool: &str, seq: u64, running: u32, desired: u32) -> Self {
        DecisionRecord {
            pool: pool.into(),
            seq,
            at: 0,
            mode: Mode::Live,
            input_digest: String::new(),
            running,
            booting: 0,
            metrics: vec![],
            votes: vec![],
            consensus: ConsensusResult { policy: "single".into(), desired: Some(f64::from(desired)), confidence: 1.0, explanation: String::new() },
            cost: vec![],
            placement: None,
            limited: None,
            proposed: desired,
            clamps: vec![],
            desired,
            alerts: vec![],
            action: None,
            shadow: None,
            lifecycle: None,
            inputs: None,
            advisor: None,
        }
    }
}

/// The advisor's vote as a tick used it: its freshest answer, or why it
/// abstained (none yet, too old, its question failed). Kept in the record
/// so that `simulate --from-journal` casts the same vote again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdvisorBallot {
    pub weight: f64,
    pub proposal: Option<Proposal>,
    pub abstained: Option<String>,
    /// When the answer it votes with arrived (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<i64>,
}

/// What the advisor did in one decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdvisorRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ballot: Option<AdvisorBallot>,
    /// Its review of this decision's change, when the change was large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewRecord>,
    /// Questions sent at this tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asked: Vec<AskedRecord>,
    /// Answers (and failures) that came back since the previous decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heard: Vec<HeardRecord>,
}

/// A large change as the advisor reviewed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewRecord {
    pub from: u32,
    pub to: u32,
    /// `agree`, `object` (held for approval), `waiting` (held for the
    /// review) or `unreviewed` (taken without one, `reason` says why).
    pub verdict: String,
    pub reason: String,
}

/// A question sent to the advisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AskedRecord {
    /// `vote`, or `review 3 -> 15`.
    pub question: String,
    /// Why it was asked (schedule, spread, a large change).
    pub why: String,
    /// The user message sent, cut to the configured size.
    pub prompt: String,
}

/// An answer, or a call that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeardRecord {
    pub question: String,
    pub asked_at: i64,
    pub latency_ms: u64,
    /// `answered`, `refused` (the answer broke the schema, its role or the
    /// bounds) or `failed` (no answer: down, timeout, an HTTP error).
    pub outcome: String,
    /// What it said (`desired 4 (confidence 0.7): …`, `object: …`), or why
    /// it counts for nothing.
    pub detail: String,
    /// The model's raw answer, cut to the configured size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
}

/// The candidate set's decision on a tick's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowDecision {
    pub votes: Vec<ExpertVote>,
    pub consensus: ConsensusResult,
    pub clamps: Vec<Clamp>,
    pub proposed: u32,
    pub desired: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_outranks_a_pause_which_outranks_the_lease() {
        assert_eq!(Mode::of(false, false, false), Mode::Live);
        assert_eq!(Mode::of(false, false, true), Mode::Standby);
        assert_eq!(Mode::of(false, true, true), Mode::Paused);
        assert_eq!(Mode::of(false, true, false), Mode::Paused);
        assert_eq!(Mode::of(true, true, true), Mode::DryRun);
        assert_eq!(Mode::of(true, false, false), Mode::DryRun);
    }
}
