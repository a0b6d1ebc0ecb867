//! The nouns of one decision, named once: what the journal stores, the API
//! returns and the dashboard draws.

use serde::{Deserialize, Serialize};

use super::guardrails::Clamp;
use scalewise_sdk::Proposal;

/// One metric as the strategies saw it this tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReading {
    pub name: String,
    pub samples: usize,
    /// The newest value, if any.
    pub last: Option<f64>,
    /// Why the series is missing or short, if it is.
    pub error: Option<String>,
}

/// One expert's part in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertVote {
    pub expert: String,
    pub weight: f64,
    /// The version that answered.
    pub version: Option<u64>,
    pub proposal: Option<Proposal>,
    /// Why the expert abstained (an error, a timeout, a trap), if it did.
    pub abstained: Option<String>,
    /// Set when the serving version faulted and the previous one answered.
    pub fallback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsensusResult {
    /// The consensus policy, or `single` when one strategy decides alone.
    pub policy: String,
    pub desired: Option<f64>,
    pub confidence: f64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostResult {
    pub policy: String,
    /// `allow`, `clamp`, `deny`, or `error`.
    pub verdict: String,
    pub clamp_to: Option<u32>,
    pub cost_per_hour: Option<f64>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Acts.
    Live,
    /// Decides and records, never acts.
    DryRun,
    /// Paused by an operator: records, never acts.
    Paused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Outcome {
    /// Recorded before the target was called: the intent.
    Pending,
    Done,
    Failed(String),
    /// Held for an operator's approval.
    AwaitingApproval,
    /// Not taken: dry run or paused.
    NotTaken,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub from: u32,
    pub to: u32,
    /// `policy`, `manual` or `approval`.
    pub cause: String,
    pub reason: String,
    pub outcome: Outcome,
}

/// Everything about one tick of one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The consensus after the cost rules, rounded: what the guardrails got.
    pub proposed: u32,
    pub clamps: Vec<Clamp>,
    /// What the pool should hold after this decision.
    pub desired: u32,
    pub action: Option<ActionRecord>,
}
