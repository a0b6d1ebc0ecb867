//! Hybrid: the larger of what the predictive and the reactive experts ask.
//!
//! A forecast provisions ahead of a load that follows its usual shape; a
//! reactive rule catches what no forecast foresaw. Taking the larger of the
//! two is what the autoscaling literature recommends for combining them
//! (provision predictively, correct reactively: Urgaonkar et al., "Agile
//! Dynamic Provisioning of Multi-Tier Internet Applications", TAAS 2008; the
//! survey of Lorido-Botran et al., J. Grid Computing 2014).
//!
//! Which experts are predictive is a setting (`predictive`, by expert name);
//! every other expert is reactive. A predictive expert whose confidence is
//! below `min_confidence` (a model that has not learnt yet, or keeps missing)
//! is set aside, so an untrained forecast cannot inflate the pool. Within a
//! side the largest proposal speaks for it. The explanation names the side
//! and the expert that carried the decision.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The experts that forecast; every other expert is reactive.
    #[serde(default = "d_predictive")]
    pub predictive: Vec<String>,
    /// Predictive proposals less confident than this are set aside.
    #[serde(default = "d_min_confidence")]
    pub min_confidence: f64,
}

fn d_predictive() -> Vec<String> {
    vec!["predictive".into()]
}
fn d_min_confidence() -> f64 {
    0.4
}

impl Default for Settings {
    fn default() -> Self {
        Self { predictive: d_predictive(), min_confidence: d_min_confidence() }
    }
}

pub struct Hybrid;

impl Consensus for Hybrid {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if s.predictive.is_empty() {
            return Err("predictive: name at least one predictive expert".into());
        }
        if !(0.0..=1.0).contains(&s.min_confidence) {
            return Err(format!("min_confidence: must be in [0, 1], got {}", s.min_confidence));
        }
        Ok(())
    }

    fn evaluate(input: &ConsensusInput, s: &Settings, _: &mut ()) -> Result<Combined, String> {
        let is_predictive = |v: &Vote| s.predictive.iter().any(|n| n == &v.expert);
        let mut set_aside = Vec::new();
        let predictive = largest(input.proposals().filter(|(v, p)| {
            let keep = is_predictive(v) && p.confidence >= s.min_confidence;
            if is_predictive(v) && !keep {
                set_aside.push(format!("{} (confidence {:.2} < {})", v.expert, p.confidence, s.min_confidence));
            }
            keep
        }));
        let reactive = largest(input.proposals().filter(|(v, _)| !is_predictive(v)));
        let note = if set_aside.is_empty() { String::new() } else { format!("; set aside: {}", set_aside.join(", ")) };
        let (side, (v, p), other) = match (predictive, reactive) {
            (Some(pr), Some(re)) if pr.1.desired > re.1.desired => ("predictive", pr, Some(re)),
            (Some(pr), Some(re)) => ("reactive", re, Some(pr)),
            (Some(pr), None) => ("predictive (no reactive proposal)", pr, None),
            (None, Some(re)) => ("reactive (no usable forecast)", re, None),
            (None, None) => return Err(format!("no expert proposed anything usable{note}{}", input.abstention_note())),
        };
        let against = other.map_or(String::new(), |(ov, op)| format!(" over {} {}", ov.expert, op.desired));
        Ok(Combined {
            desired: p.desired,
            confidence: p.confidence,
            explanation: format!("{side} carried: {} {}{against} ({}){note}{}", v.expert, p.desired, p.reason, input.abstention_note()),
        })
    }
}

/// The proposal with the largest capacity.
fn largest<'a>(it: impl Iterator<Item = (&'a Vote, &'a Proposal)>) -> Option<(&'a Vote, &'a Proposal)> {
    it.max_by(|a, b| a.1.desired.total_cmp(&b.1.desired))
}

export_consensus!(Hybrid);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_consensus;

    fn vote(expert: &str, desired: Option<f64>, confidence: f64) -> Vote {
        let ballot = match desired {
            Some(d) => Ballot::Proposed(Proposal::new(d, confidence, "why")),
            None => Ballot::Abstained("trapped".into()),
        };
        Vote { expert: expert.into(), weight: 1.0, ballot }
    }

    fn run(votes: Vec<Vote>) -> Result<ConsensusOutput, String> {
        run_consensus::<Hybrid>(&ConsensusInput { pool: Pool { id: "p".into(), running: 10, booting: 0, min: 1, max: 100 }, votes, settings: "{}".into(), ..Default::default() })
    }

    #[test]
    fn the_forecast_wins_ahead_of_a_ramp() {
        let out = run(vec![vote("predictive", Some(18.0), 0.9), vote("hpa", Some(10.0), 1.0)]).unwrap();
        assert_eq!(out.desired, 18.0);
        assert_eq!(out.explanation, "predictive carried: predictive 18 over hpa 10 (why)");
    }

    #[test]
    fn the_reactive_side_catches_what_no_forecast_saw_and_wins_ties() {
        let out = run(vec![vote("predictive", Some(10.0), 0.9), vote("hpa", Some(25.0), 1.0), vote("queue", Some(14.0), 1.0)]).unwrap();
        assert_eq!(out.desired, 25.0);
        assert!(out.explanation.starts_with("reactive carried: hpa 25 over predictive 10"), "{}", out.explanation);
        let tie = run(vec![vote("predictive", Some(12.0), 0.9), vote("hpa", Some(12.0), 1.0)]).unwrap();
        assert!(tie.explanation.starts_with("reactive carried: hpa 12"), "{}", tie.explanation);
    }

    #[test]
    fn an_unsure_forecast_is_set_aside() {
        let out = run(vec![vote("predictive", Some(60.0), 0.2), vote("hpa", Some(11.0), 1.0)]).unwrap();
        assert_eq!(out.desired, 11.0);
        assert!(out.explanation.contains("set aside: predictive (confidence 0.20 < 0.4)"), "{}", out.explanation);
    }

    #[test]
    fn abstentions_leave_the_other_side() {
        let out = run(vec![vote("predictive", None, 0.0), vote("hpa", Some(9.0), 1.0)]).unwrap();
        assert_eq!(out.desired, 9.0);
        assert!(out.explanation.starts_with("reactive (no usable forecast) carried: hpa 9"), "{}", out.explanation);
        assert!(out.explanation.ends_with("; abstained: predictive (trapped)"), "{}", out.explanation);
        let out = run(vec![vote("predictive", Some(7.0), 0.9), vote("hpa", None, 0.0)]).unwrap();
        assert!(out.explanation.starts_with("predictive (no reactive proposal) carried"), "{}", out.explanation);
        assert!(run(vec![vote("predictive", None, 0.0), vote("hpa", None, 0.0)]).is_err());
    }
}
