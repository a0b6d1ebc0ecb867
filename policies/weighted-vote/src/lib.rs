//! Weighted vote: every expert's proposal, weighted by its configured weight
//! times its own confidence.
//!
//! The decision is the weighted mean of the proposals; its confidence is the
//! share of the total weight that voted, times the weighted mean confidence.
//! Experts that abstained (trapped, timed out, had no data) carry no weight but
//! lower the confidence. With every expert abstaining there is nothing to
//! decide, and the policy says so (the host then holds).

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How to turn the weighted mean into whole members.
    #[serde(default)]
    pub rounding: Rounding,
}

impl Default for Settings {
    fn default() -> Self {
        Self { rounding: Rounding::Ceil }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Round up: prefer capacity over risk.
    #[default]
    Ceil,
    Nearest,
    Floor,
}

pub struct WeightedVote;

impl Consensus for WeightedVote {
    type Settings = Settings;
    type State = ();

    fn evaluate(input: &ConsensusInput, s: &Settings, _: &mut ()) -> Result<Combined, String> {
        let total_weight: f64 = input.votes.iter().map(|v| v.weight.max(0.0)).sum();
        let (mut sum, mut weight, mut conf_sum) = (0.0, 0.0, 0.0);
        let mut parts = Vec::new();
        for vote in &input.votes {
            match &vote.ballot {
                Ballot::Proposed(p) if p.desired.is_finite() && vote.weight > 0.0 => {
                    let w = vote.weight * p.confidence.clamp(0.0, 1.0);
                    sum += w * p.desired;
                    weight += w;
                    conf_sum += vote.weight * p.confidence.clamp(0.0, 1.0);
                    parts.push(format!("{} {} (w {:.2})", vote.expert, p.desired, w));
                }
                Ballot::Proposed(_) => parts.push(format!("{} ignored (weight 0)", vote.expert)),
                Ballot::Abstained(why) => parts.push(format!("{} abstained: {why}", vote.expert)),
            }
        }
        if weight <= 0.0 {
            return Err(format!("no expert proposed anything with weight: {}", parts.join("; ")));
        }
        let mean = sum / weight;
        let desired = match s.rounding {
            Rounding::Ceil => (mean - 1e-9).ceil(),
            Rounding::Nearest => mean.round(),
            Rounding::Floor => (mean + 1e-9).floor(),
        };
        let voted: f64 = input
            .votes
            .iter()
            .filter(|v| v.proposal().is_some())
            .map(|v| v.weight.max(0.0))
            .sum();
        let confidence = (conf_sum / voted) * (voted / total_weight);
        Ok(Combined {
            desired: input.pool.clamp(desired),
            confidence,
            explanation: format!("weighted mean {mean:.2} -> {desired}: {}", parts.join("; ")),
        })
    }
}

export_consensus!(WeightedVote);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_consensus;

    fn vote(expert: &str, weight: f64, desired: Option<f64>, confidence: f64) -> Vote {
        let ballot = match desired {
            Some(d) => Ballot::Proposed(Proposal::new(d, confidence, "")),
            None => Ballot::Abstained("trapped".into()),
        };
        Vote { expert: expert.into(), weight, ballot }
    }

    fn run(votes: Vec<Vote>) -> Result<ConsensusOutput, String> {
        run_consensus::<WeightedVote>(&ConsensusInput {
            pool: Pool { id: "p".into(), running: 4, booting: 0, min: 1, max: 100 },
            votes,
            ..Default::default()
        })
    }

    #[test]
    fn weights_by_weight_times_confidence() {
        // (1*1*10 + 3*1*2) / 4 = 4.0
        let out = run(vec![vote("a", 1.0, Some(10.0), 1.0), vote("b", 3.0, Some(2.0), 1.0)]).unwrap();
        assert_eq!(out.desired, 4.0);
        assert_eq!(out.confidence, 1.0);
        // Halving a's confidence: (0.5*10 + 3*2) / 3.5 = 3.14 -> ceil 4
        let out = run(vec![vote("a", 1.0, Some(10.0), 0.5), vote("b", 3.0, Some(2.0), 1.0)]).unwrap();
        assert_eq!(out.desired, 4.0);
        assert!((out.confidence - 3.5 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn abstentions_lower_confidence() {
        let out = run(vec![vote("a", 1.0, Some(6.0), 1.0), vote("b", 1.0, None, 1.0)]).unwrap();
        assert_eq!(out.desired, 6.0);
        assert_eq!(out.confidence, 0.5);
        assert!(out.explanation.contains("b abstained: trapped"), "{}", out.explanation);
    }

    #[test]
    fn all_abstaining_is_an_error() {
        let err = run(vec![vote("a", 1.0, None, 1.0)]).unwrap_err();
        assert!(err.contains("a abstained"), "{err}");
        assert!(run(vec![]).is_err());
    }
}
