//! Confidence-weighted: a weighted mean of the proposals, each weighted by
//! its configured weight, its own confidence and a trust it earns.
//!
//! Trust is learnt from each expert's recent accuracy. Consensus never sees
//! the load itself, so the yardstick is the panel: what the experts as a
//! whole (their median) ask for now is the best available estimate of what
//! the pool needs now, and an expert's error is how far its proposal of
//! `lag` decisions ago was from it, relative to it. An expert that saw a
//! ramp coming (`lag` is best set to the boot delay in decisions) scores
//! well; one that lags the load, or one that has drifted away from the
//! others, scores badly. Each expert's error is an exponentially weighted
//! mean (`learning_rate` is the newest error's weight) and its trust is
//! `1 / (1 + sensitivity × error)`, never below `min_trust`, so a bad run
//! can be lived down. Trust lives in the policy state and survives restarts
//! and hot swaps; an expert seen for the first time starts fully trusted.
//!
//! Abstaining experts carry no weight, and their trust is left as it was.

use std::collections::{BTreeMap, VecDeque};

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How many decisions back a proposal is scored against the panel now.
    #[serde(default = "d_lag")]
    pub lag: u32,
    #[serde(default = "d_rate")]
    pub learning_rate: f64,
    #[serde(default = "d_sensitivity")]
    pub sensitivity: f64,
    #[serde(default = "d_min_trust")]
    pub min_trust: f64,
}

fn d_lag() -> u32 {
    5
}
fn d_rate() -> f64 {
    0.1
}
fn d_sensitivity() -> f64 {
    10.0
}
fn d_min_trust() -> f64 {
    0.05
}

impl Default for Settings {
    fn default() -> Self {
        Self { lag: d_lag(), learning_rate: d_rate(), sensitivity: d_sensitivity(), min_trust: d_min_trust() }
    }
}

/// What the policy remembers of one expert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Its last proposals, newest last (None: it abstained).
    pub history: VecDeque<Option<f64>>,
    /// Exponentially weighted mean relative error.
    pub error: f64,
    pub scored: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub experts: BTreeMap<String, Record>,
}

impl Settings {
    fn trust(&self, r: Option<&Record>) -> f64 {
        match r {
            Some(r) if r.scored > 0 => (1.0 / (1.0 + self.sensitivity * r.error)).max(self.min_trust),
            _ => 1.0,
        }
    }
}

pub struct ConfidenceWeighted;

impl Consensus for ConfidenceWeighted {
    type Settings = Settings;
    type State = State;

    fn validate(s: &Settings) -> Result<(), String> {
        if s.lag == 0 || s.lag > 1000 {
            return Err(format!("lag: must be between 1 and 1000 decisions, got {}", s.lag));
        }
        if !(s.learning_rate > 0.0 && s.learning_rate <= 1.0) {
            return Err(format!("learning_rate: must be in (0, 1], got {}", s.learning_rate));
        }
        if !(s.sensitivity.is_finite() && s.sensitivity >= 0.0) {
            return Err(format!("sensitivity: must be a number ≥ 0, got {}", s.sensitivity));
        }
        if !(0.0..=1.0).contains(&s.min_trust) {
            return Err(format!("min_trust: must be in [0, 1], got {}", s.min_trust));
        }
        Ok(())
    }

    fn evaluate(input: &ConsensusInput, s: &Settings, state: &mut State) -> Result<Combined, String> {
        let voters: Vec<(&Vote, &Proposal)> = input.proposals().collect();
        // Score last decisions' proposals against the panel now.
        let desired: Vec<f64> = voters.iter().map(|(_, p)| p.desired).collect();
        if let Some(panel) = series::percentile(&desired, 50.0) {
            for (_, r) in state.experts.iter_mut() {
                if r.history.len() == s.lag as usize
                    && let Some(Some(then)) = r.history.front()
                {
                    let e = (then - panel).abs() / panel.abs().max(1.0);
                    r.error = if r.scored == 0 { e } else { s.learning_rate * e + (1.0 - s.learning_rate) * r.error };
                    r.scored = r.scored.saturating_add(1);
                }
            }
        }
        let (mut sum, mut weight, mut conf) = (0.0, 0.0, 0.0);
        let mut parts = Vec::new();
        for (v, p) in &voters {
            let trust = s.trust(state.experts.get(&v.expert));
            let c = p.confidence.clamp(0.0, 1.0);
            let w = v.weight.max(0.0) * c * trust;
            sum += w * p.desired;
            weight += w;
            conf += c * trust;
            parts.push((w, format!("{} {} (confidence {c:.2}, trust {trust:.2})", v.expert, p.desired)));
        }
        // Remember this decision's proposals (and abstentions) for scoring.
        for v in &input.votes {
            let r = state.experts.entry(v.expert.clone()).or_default();
            r.history.push_back(v.proposal().map(|p| p.desired).filter(|d| d.is_finite()));
            while r.history.len() > s.lag as usize {
                r.history.pop_front();
            }
        }
        // Experts no longer on the panel are forgotten.
        state.experts.retain(|name, _| input.votes.iter().any(|v| &v.expert == name));
        if weight <= 0.0 {
            return Err(format!("no expert proposed anything with weight, confidence and trust{}", input.abstention_note()));
        }
        let desired = (sum / weight - 1e-9).ceil();
        // The experts that carried it: those with the most effective weight.
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let carried: Vec<String> = parts.iter().map(|(w, text)| format!("{text}: {:.0}%", 100.0 * w / weight)).collect();
        Ok(Combined {
            desired,
            confidence: (conf / input.votes.len().max(1) as f64).clamp(0.0, 1.0),
            explanation: format!("weighted mean {:.2} -> {desired}, carried by {}{}", sum / weight, carried.join("; "), input.abstention_note()),
        })
    }
}

export_consensus!(ConfidenceWeighted);

#[cfg(test)]
mod tests;
