//! The last check between a policy's answer and the rest of the host.
//!
//! A policy's output is data from an untrusted program. Before anything acts
//! on it, it must be a number that means something: finite, not negative,
//! inside the pool's bounds, with a confidence in [0, 1], a reason short
//! enough to journal and a state small enough to persist. A consensus must
//! also be bound by the votes cast: it picks among the proposals (rounded to
//! whole members) or holds, and never invents a capacity no expert asked for.
//! Anything else is a broken policy, reported as
//! [`PolicyError::InvalidOutput`], and never reaches a provider.

use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostOutput, Gauge, Pool, StrategyOutput, Verdict};

use super::error::PolicyError;

/// Size limits on what a policy may hand back.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    pub max_reason_bytes: usize,
    pub max_state_bytes: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        Self { max_reason_bytes: 4 * 1024, max_state_bytes: 1024 * 1024 }
    }
}

fn invalid(msg: String) -> PolicyError {
    PolicyError::InvalidOutput(msg)
}

fn check_capacity(what: &str, value: f64, pool: &Pool) -> Result<(), PolicyError> {
    if !value.is_finite() {
        return Err(invalid(format!("{what} is {value}, not a number")));
    }
    if value < 0.0 {
        return Err(invalid(format!("{what} is negative ({value})")));
    }
    if value < f64::from(pool.min) || value > f64::from(pool.max) {
        return Err(invalid(format!(
            "{what} {value} is outside the pool's bounds [{}, {}]",
            pool.min, pool.max
        )));
    }
    Ok(())
}

fn check_confidence(value: f64) -> Result<(), PolicyError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(invalid(format!("confidence {value} is outside [0, 1]")));
    }
    Ok(())
}

fn check_text(what: &str, text: &str, limits: &OutputLimits) -> Result<(), PolicyError> {
    if text.len() > limits.max_reason_bytes {
        return Err(invalid(format!(
            "{what} is {} bytes; the limit is {}",
            text.len(),
            limits.max_reason_bytes
        )));
    }
    Ok(())
}

fn check_state(state: &Option<Vec<u8>>, limits: &OutputLimits) -> Result<(), PolicyError> {
    match state {
        Some(s) if s.len() > limits.max_state_bytes => Err(invalid(format!(
            "state is {} bytes; the limit is {}",
            s.len(),
            limits.max_state_bytes
        ))),
        _ => Ok(()),
    }
}

/// At most this many gauges per call, each named like a Prometheus label
/// value an operator would type: a policy cannot flood the exposition.
const MAX_GAUGES: usize = 16;

fn check_gauges(gauges: &[Gauge]) -> Result<(), PolicyError> {
    if gauges.len() > MAX_GAUGES {
        return Err(invalid(format!("{} gauges; the limit is {MAX_GAUGES}", gauges.len())));
    }
    for g in gauges {
        let ok = !g.name.is_empty() && g.name.len() <= 64 && g.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(invalid(format!("gauge name {:?} must be 1 to 64 letters, digits or underscores", g.name)));
        }
        if !g.value.is_finite() {
            return Err(invalid(format!("gauge {} is {}", g.name, g.value)));
        }
    }
    Ok(())
}

pub fn check_strategy(pool: &Pool, out: &StrategyOutput, limits: &OutputLimits) -> Result<(), PolicyError> {
    check_text("reason", &out.proposal.reason, limits)?;
    check_capacity("desired capacity", out.proposal.desired, pool)?;
    check_confidence(out.proposal.confidence)?;
    check_gauges(&out.gauges)?;
    check_state(&out.state, limits)
}

pub fn check_cost(pool: &Pool, proposed: u32, out: &CostOutput, limits: &OutputLimits) -> Result<(), PolicyError> {
    check_text("reason", &out.reason, limits)?;
    if !(out.cost_per_hour.is_finite() && out.cost_per_hour >= 0.0) {
        return Err(invalid(format!("cost per hour is {}", out.cost_per_hour)));
    }
    if let Verdict::Clamp(n) = out.verdict {
        if n > proposed.max(pool.capacity()) {
            return Err(invalid(format!(
                "clamp to {n} is above both the proposal ({proposed}) and the current capacity ({})",
                pool.capacity()
            )));
        }
        check_capacity("clamp", f64::from(n), pool)?;
    }
    if let Some(p) = &out.placement {
        let members = match out.verdict {
            Verdict::Allow => proposed,
            Verdict::Clamp(n) => n,
            Verdict::Deny => pool.capacity(),
        };
        if p.total() != members {
            return Err(invalid(format!(
                "placement of {} on demand + {} spot is not the {members} members the verdict leaves",
                p.on_demand, p.spot
            )));
        }
        check_text("placement kind", p.kind.as_deref().unwrap_or(""), limits)?;
    }
    check_state(&out.state, limits)
}

pub fn check_consensus(input: &ConsensusInput, out: &ConsensusOutput, limits: &OutputLimits) -> Result<(), PolicyError> {
    check_text("explanation", &out.explanation, limits)?;
    check_capacity("desired capacity", out.desired, &input.pool)?;
    check_within_votes(input, out.desired)?;
    check_confidence(out.confidence)?;
    check_state(&out.state, limits)
}

/// A consensus answer is a hold at the current capacity, or lies within the
/// proposals cast: from the lowest rounded down to the highest rounded up
/// (a mean of 2.3 and 2.4 may become 2 or 3 members), kept inside the pool's
/// bounds as every answer is. Abstentions propose nothing.
fn check_within_votes(input: &ConsensusInput, desired: f64) -> Result<(), PolicyError> {
    let pool = &input.pool;
    let current = f64::from(pool.capacity());
    if desired == current {
        return Ok(());
    }
    let (lo, hi) = input.proposals().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, p)| (lo.min(p.desired), hi.max(p.desired)));
    if lo > hi {
        return Err(invalid(format!("desired capacity {desired} with no proposal cast; only a hold at the current {current} can be")));
    }
    let (min, max) = (f64::from(pool.min), f64::from(pool.max));
    let (low, high) = (lo.floor().clamp(min, max), hi.ceil().clamp(min, max));
    if desired < low || desired > high {
        return Err(invalid(format!(
            "desired capacity {desired} is outside the proposals cast [{lo}, {hi}] and is not a hold at the current {current}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::{Placement, Proposal};

    fn out(desired: f64, confidence: f64, reason: &str) -> StrategyOutput {
        StrategyOutput { proposal: Proposal::new(desired, confidence, reason), gauges: vec![], state: None }
    }

    #[test]
    fn rejects_nonsense() {
        let pool = Pool { id: "p".into(), running: 2, booting: 0, min: 1, max: 10 };
        let l = OutputLimits::default();
        assert!(check_strategy(&pool, &out(5.0, 0.5, "ok"), &l).is_ok());
        for (o, needle) in [
            (out(f64::NAN, 1.0, ""), "NaN"),
            (out(f64::INFINITY, 1.0, ""), "inf"),
            (out(-1.0, 1.0, ""), "negative"),
            (out(11.0, 1.0, ""), "outside the pool's bounds [1, 10]"),
            (out(0.0, 1.0, ""), "outside the pool's bounds"),
            (out(5.0, 1.5, ""), "confidence"),
            (out(5.0, f64::NAN, ""), "confidence"),
            (out(5.0, 1.0, &"x".repeat(5000)), "5000 bytes"),
        ] {
            let err = check_strategy(&pool, &o, &l).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
        let big = StrategyOutput { state: Some(vec![0; 2 << 20]), ..out(5.0, 1.0, "") };
        assert!(check_strategy(&pool, &big, &l).unwrap_err().to_string().contains("state is"));
        let gauge = |name: &str, value| StrategyOutput { gauges: vec![Gauge { name: name.into(), value }], ..out(5.0, 1.0, "") };
        assert!(check_strategy(&pool, &gauge("mape", 0.1), &l).is_ok());
        assert!(check_strategy(&pool, &gauge("a b", 0.1), &l).unwrap_err().to_string().contains("gauge name"));
        assert!(check_strategy(&pool, &gauge("mape", f64::INFINITY), &l).is_err());
    }

    #[test]
    fn a_consensus_is_bound_by_the_votes_cast() {
        use scalewise_sdk::{Ballot, Vote};
        let pool = Pool { id: "p".into(), running: 5, booting: 0, min: 1, max: 10 };
        let l = OutputLimits::default();
        let check = |votes: &[Vote], out: &ConsensusOutput, l: &OutputLimits| {
            check_consensus(&ConsensusInput { pool: pool.clone(), votes: votes.to_vec(), ..Default::default() }, out, l)
        };
        let vote = |d: f64| Vote { expert: format!("e{d}"), weight: 1.0, ballot: Ballot::Proposed(Proposal::new(d, 1.0, "")) };
        let abstain = Vote { expert: "x".into(), weight: 1.0, ballot: Ballot::Abstained("no data".into()) };
        let answer = |d: f64| ConsensusOutput { desired: d, confidence: 1.0, explanation: String::new(), state: None };
        let votes = [vote(2.3), vote(2.4), abstain.clone()];
        for ok in [2.0, 3.0, 5.0] {
            assert!(check(&votes, &answer(ok), &l).is_ok(), "{ok}: rounding either way, or a hold");
        }
        for bad in [1.0, 4.0, 9.0] {
            let err = check(&votes, &answer(bad), &l).unwrap_err().to_string();
            assert!(err.contains("outside the proposals cast [2.3, 2.4]") && err.contains("current 5"), "{err}");
        }
        let err = check(&[vote(2.0), vote(2.0)], &answer(6.0), &l).unwrap_err().to_string();
        assert!(err.contains("[2, 2]"), "{err}");
        // Nothing proposed: only a hold.
        assert!(check(std::slice::from_ref(&abstain), &answer(5.0), &l).is_ok());
        let err = check(&[abstain], &answer(4.0), &l).unwrap_err().to_string();
        assert!(err.contains("no proposal cast"), "{err}");
        // Votes beyond the bounds: the range is kept inside them.
        assert!(check(&[vote(0.2), vote(30.0)], &answer(1.0), &l).is_ok());
        assert!(check(&[vote(12.0)], &answer(10.0), &l).is_ok());
    }

    #[test]
    fn cost_clamps_must_not_raise() {
        let pool = Pool { id: "p".into(), running: 4, booting: 0, min: 1, max: 10 };
        let l = OutputLimits::default();
        let c = |verdict, cost| CostOutput { verdict, cost_per_hour: cost, reason: String::new(), placement: None, state: None };
        assert!(check_cost(&pool, 8, &c(Verdict::Clamp(6), 1.0), &l).is_ok());
        let placed = |verdict, od, spot| CostOutput { placement: Some(Placement { kind: None, on_demand: od, spot }), ..c(verdict, 1.0) };
        assert!(check_cost(&pool, 8, &placed(Verdict::Allow, 2, 6), &l).is_ok());
        assert!(check_cost(&pool, 8, &placed(Verdict::Clamp(6), 2, 4), &l).is_ok());
        assert!(check_cost(&pool, 8, &placed(Verdict::Deny, 4, 0), &l).is_ok());
        let err = check_cost(&pool, 8, &placed(Verdict::Allow, 2, 2), &l).unwrap_err().to_string();
        assert!(err.contains("not the 8 members"), "{err}");
        assert!(check_cost(&pool, 8, &c(Verdict::Clamp(9), 1.0), &l).is_err());
        assert!(check_cost(&pool, 8, &c(Verdict::Allow, f64::NAN), &l).is_err());
    }
}
