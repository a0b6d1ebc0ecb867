//! Safest vote: the choice that risks the least, as Nomad Autoscaler makes it.
//!
//! Any expert that wants to scale up wins, and the largest scale-up among
//! them. Failing that, any expert that wants to hold wins. Only when every
//! voting expert wants to scale down does the pool shrink, and then by the
//! smallest reduction proposed. Abstentions are listed but do not vote.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {}

pub struct Safest;

impl Consensus for Safest {
    type Settings = Settings;
    type State = ();

    fn evaluate(input: &ConsensusInput, _: &Settings, _: &mut ()) -> Result<Combined, String> {
        let current = input.pool.capacity() as f64;
        let proposals: Vec<(&str, &Proposal)> = input.proposals().map(|(v, p)| (v.expert.as_str(), p)).collect();
        let abstained: Vec<&str> =
            input.votes.iter().filter(|v| v.proposal().is_none()).map(|v| v.expert.as_str()).collect();
        // Larger desired is safer in every direction: the max is the answer.
        let (winner, p) = proposals
            .iter()
            .copied()
            .max_by(|a, b| a.1.desired.total_cmp(&b.1.desired))
            .ok_or_else(|| format!("every expert abstained: {}", abstained.join(", ")))?;
        let direction = if p.desired > current {
            "scale-up wins"
        } else if p.desired == current {
            "hold beats scale-down"
        } else {
            "all experts want to scale down; smallest reduction"
        };
        let mut explanation = format!("{direction}: {winner} proposed {} ({})", p.desired, p.reason);
        if !abstained.is_empty() {
            explanation.push_str(&format!("; abstained: {}", abstained.join(", ")));
        }
        Ok(Combined { desired: p.desired, confidence: p.confidence, explanation })
    }
}

export_consensus!(Safest);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_consensus;

    fn vote(expert: &str, desired: Option<f64>) -> Vote {
        let ballot = match desired {
            Some(d) => Ballot::Proposed(Proposal::new(d, 0.8, format!("{expert} says {d}"))),
            None => Ballot::Abstained("timed out".into()),
        };
        Vote { expert: expert.into(), weight: 1.0, ballot }
    }

    fn run(votes: Vec<Vote>) -> Result<ConsensusOutput, String> {
        run_consensus::<Safest>(&ConsensusInput {
            pool: Pool { id: "p".into(), running: 5, booting: 0, min: 1, max: 100 },
            votes,
            ..Default::default()
        })
    }

    #[test]
    fn largest_scale_up_wins() {
        let out = run(vec![vote("a", Some(3.0)), vote("b", Some(8.0)), vote("c", Some(7.0)), vote("d", Some(5.0))]).unwrap();
        assert_eq!(out.desired, 8.0);
        assert!(out.explanation.starts_with("scale-up wins: b"), "{}", out.explanation);
    }

    #[test]
    fn hold_beats_scale_down() {
        let out = run(vec![vote("a", Some(3.0)), vote("b", Some(5.0))]).unwrap();
        assert_eq!(out.desired, 5.0);
        assert!(out.explanation.starts_with("hold beats scale-down"), "{}", out.explanation);
    }

    #[test]
    fn smallest_reduction_when_all_go_down() {
        let out = run(vec![vote("a", Some(2.0)), vote("b", Some(4.0)), vote("x", None)]).unwrap();
        assert_eq!(out.desired, 4.0);
        assert!(out.explanation.contains("abstained: x"), "{}", out.explanation);
        assert!(run(vec![vote("x", None)]).is_err());
    }
}
