//! Median: the middle of the proposals, weighted by each expert's weight.
//!
//! One expert with a wild proposal (a broken metric, a model gone astray)
//! moves a mean as far as it likes; it moves a median not at all while the
//! others agree. The weighted median is the proposal at which half of the
//! voting weight lies on either side; when the halves split exactly between
//! two proposals, `ties` picks the upper one (the default, erring toward
//! capacity), the lower one, or their mean. Abstentions carry no weight.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ties {
    #[default]
    Upper,
    Lower,
    Mean,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub ties: Ties,
}

pub struct Median;

impl Consensus for Median {
    type Settings = Settings;
    type State = ();

    fn evaluate(input: &ConsensusInput, s: &Settings, _: &mut ()) -> Result<Combined, String> {
        let mut voters: Vec<(&Vote, &Proposal)> = input.proposals().filter(|(v, _)| v.weight > 0.0).collect();
        if voters.is_empty() {
            return Err(format!("no expert proposed anything with weight{}", input.abstention_note()));
        }
        voters.sort_by(|a, b| a.1.desired.total_cmp(&b.1.desired));
        let total: f64 = voters.iter().map(|(v, _)| v.weight).sum();
        // The first proposal at which the running weight reaches half.
        let mut below = 0.0;
        let mut at = 0;
        for (i, (v, _)) in voters.iter().enumerate() {
            below += v.weight;
            if below >= total / 2.0 - 1e-12 {
                at = i;
                break;
            }
        }
        let exact_split = (below - total / 2.0).abs() < 1e-12 && at + 1 < voters.len();
        let (desired, carriers) = if exact_split {
            let (lo, hi) = (voters[at], voters[at + 1]);
            match s.ties {
                Ties::Upper => (hi.1.desired, vec![hi.0.expert.as_str()]),
                Ties::Lower => (lo.1.desired, vec![lo.0.expert.as_str()]),
                Ties::Mean => ((lo.1.desired + hi.1.desired) / 2.0, vec![lo.0.expert.as_str(), hi.0.expert.as_str()]),
            }
        } else {
            (voters[at].1.desired, vec![voters[at].0.expert.as_str()])
        };
        let list: Vec<String> = voters.iter().map(|(v, p)| format!("{} {}", v.expert, p.desired)).collect();
        // Confidence: the weight within 10 % of the median, as a share.
        let near: f64 = voters.iter().filter(|(_, p)| (p.desired - desired).abs() <= 0.1 * desired.abs().max(1.0)).map(|(v, _)| v.weight).sum();
        let tie = if exact_split { format!(" (a tie, broken {})", match s.ties { Ties::Upper => "upward", Ties::Lower => "downward", Ties::Mean => "by the mean" }) } else { String::new() };
        Ok(Combined {
            desired,
            confidence: near / total,
            explanation: format!("median {desired}{tie} carried by {} of [{}]{}", carriers.join(" and "), list.join(", "), input.abstention_note()),
        })
    }
}

export_consensus!(Median);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_consensus;

    fn vote(expert: &str, weight: f64, desired: Option<f64>) -> Vote {
        let ballot = match desired {
            Some(d) => Ballot::Proposed(Proposal::new(d, 0.8, "")),
            None => Ballot::Abstained("timed out".into()),
        };
        Vote { expert: expert.into(), weight, ballot }
    }

    fn run(settings: &str, votes: Vec<Vote>) -> Result<ConsensusOutput, String> {
        run_consensus::<Median>(&ConsensusInput { pool: Pool { id: "p".into(), running: 10, booting: 0, min: 1, max: 1000 }, votes, settings: settings.into(), ..Default::default() })
    }

    #[test]
    fn one_wild_expert_does_not_move_it() {
        let out = run("{}", vec![vote("a", 1.0, Some(12.0)), vote("b", 1.0, Some(11.0)), vote("wild", 1.0, Some(900.0))]).unwrap();
        assert_eq!(out.desired, 12.0);
        assert!(out.explanation.starts_with("median 12 carried by a of [b 11, a 12, wild 900]"), "{}", out.explanation);
        assert!((out.confidence - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn ties_break_as_configured() {
        let votes = || vec![vote("a", 1.0, Some(8.0)), vote("b", 1.0, Some(14.0))];
        assert_eq!(run("{}", votes()).unwrap().desired, 14.0);
        assert_eq!(run(r#"{"ties":"lower"}"#, votes()).unwrap().desired, 8.0);
        let mean = run(r#"{"ties":"mean"}"#, votes()).unwrap();
        assert_eq!(mean.desired, 11.0);
        assert!(mean.explanation.contains("a tie, broken by the mean) carried by a and b"), "{}", mean.explanation);
    }

    #[test]
    fn weight_moves_the_middle() {
        let out = run("{}", vec![vote("a", 3.0, Some(5.0)), vote("b", 1.0, Some(20.0)), vote("c", 1.0, Some(30.0))]).unwrap();
        assert_eq!(out.desired, 5.0);
    }

    #[test]
    fn abstentions_and_all_disagreeing() {
        let out = run("{}", vec![vote("x", 1.0, None), vote("a", 1.0, Some(3.0)), vote("b", 1.0, Some(50.0)), vote("c", 1.0, Some(400.0))]).unwrap();
        assert_eq!(out.desired, 50.0);
        assert!(out.explanation.ends_with("; abstained: x (timed out)"), "{}", out.explanation);
        assert!((out.confidence - 1.0 / 3.0).abs() < 1e-9, "nobody agrees: {}", out.confidence);
        assert!(run("{}", vec![vote("x", 1.0, None)]).is_err());
    }
}
