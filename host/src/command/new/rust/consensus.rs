//! {{name}}: consensus. The mean of the proposals, weighted by each
//! expert's weight times its confidence.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Round the mean up rather than to the nearest whole instance.
    #[serde(default)]
    pub round_up: bool,
}

pub struct Policy;

impl Consensus for Policy {
    type Settings = Settings;
    type State = ();

    fn evaluate(input: &ConsensusInput, s: &Settings, _: &mut ()) -> Result<Combined, String> {
        let (mut sum, mut weight) = (0.0, 0.0);
        for vote in &input.votes {
            if let Some(p) = vote.proposal() {
                let w = vote.weight * p.confidence;
                sum += w * p.desired;
                weight += w;
            }
        }
        if weight <= 0.0 {
            return Err("no expert proposed anything".into());
        }
        let mean = sum / weight;
        let desired = input.pool.clamp(if s.round_up { mean.ceil() } else { mean.round() });
        Ok(Combined { desired, confidence: 1.0, explanation: format!("weighted mean {} of {} votes", fixed(mean, 2), input.votes.len()) })
    }
}

export_consensus!(Policy);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_consensus;

    fn vote(desired: f64, weight: f64) -> Vote {
        Vote { expert: "e".into(), weight, ballot: Ballot::Proposed(Proposal::new(desired, 1.0, "")) }
    }

    #[test]
    fn weights_the_votes() {
        let input = ConsensusInput {
            pool: Pool { id: "p".into(), running: 2, booting: 0, min: 0, max: 50 },
            votes: vec![vote(2.0, 1.0), vote(8.0, 2.0)],
            ..Default::default()
        };
        assert_eq!(run_consensus::<Policy>(&input).unwrap().desired, 6.0);
    }
}
