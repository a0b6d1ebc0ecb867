//! What a pool remembers between ticks and across restarts: the guardrails'
//! history, every policy's state, the budget's books, and whether an
//! operator paused it.
//!
//! Why a file of its own: it is the one value the journal persists besides
//! the decisions, and the one value [`decide`](super::pipeline::decide)
//! mutates. Keeping it apart from the pipeline lets the journal depend on
//! this noun without depending on the decision code.

use std::collections::BTreeMap;

use scalewise_sdk::Placement;

use super::guardrails::GuardState;

/// What persists between ticks: guardrail memory and policy states.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolMemory {
    pub seq: u64,
    pub guard: GuardState,
    /// Each policy's state from its last call, by policy id.
    #[serde(with = "super::state_text", default)]
    pub states: BTreeMap<String, Vec<u8>>,
    /// Money spent in the budget period so far, and when the period began.
    pub spent: f64,
    pub period_start: i64,
    /// Budget alert thresholds (percent) crossed in this period.
    #[serde(default)]
    pub alerts_fired: Vec<f64>,
    /// How the capacity was last bought (the placement of the last action
    /// that had one): what spend is priced by.
    #[serde(default)]
    pub placement: Option<Placement>,
    pub paused: bool,
    /// The promotion the pool is under, if any, so that it holds across a
    /// restart (the config still names the set it replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted: Option<Promotion>,
    /// The advisor's calls of the last hour, as (the start of a
    /// five-minute bucket, the calls in it), so that a restart of the host
    /// keeps its hourly cap. At most twelve buckets: a few hundred bytes,
    /// whatever the cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisor_calls: Vec<(i64, u32)>,
}

/// A promotion: the set serving since, and the set it replaced (what a
/// rollback returns to).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Promotion {
    pub serving: PolicySet,
    pub previous: PolicySet,
}

/// A set of policies by name: strategies with their weights, consensus,
/// cost rules.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicySet {
    pub strategies: Vec<(String, f64)>,
    #[serde(default)]
    pub consensus: Option<String>,
    #[serde(default)]
    pub cost_rules: Vec<String>,
}

impl PoolMemory {
    /// A copy of everything but the policy states (which may be large).
    pub fn sans_states(&self) -> PoolMemory {
        PoolMemory {
            seq: self.seq,
            guard: self.guard.clone(),
            states: BTreeMap::new(),
            spent: self.spent,
            period_start: self.period_start,
            alerts_fired: self.alerts_fired.clone(),
            placement: self.placement.clone(),
            paused: self.paused,
            promoted: self.promoted.clone(),
            advisor_calls: self.advisor_calls.clone(),
        }
    }
}
