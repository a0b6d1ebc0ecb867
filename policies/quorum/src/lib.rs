//! Quorum: the pool moves only when `k` experts agree which way.
//!
//! Each proposal points up, down or nowhere relative to the pool's capacity.
//! When at least `k` experts point up, the pool grows to the median of their
//! proposals; failing that, when at least `k` point down, it shrinks to the
//! median of theirs (the upper one, for an even count: the smaller step);
//! otherwise it holds. Up is checked first, so a quorum small enough for
//! both sides to reach errs toward capacity.
//!
//! `k` defaults to a strict majority of the experts that voted. Abstaining
//! experts (trapped, timed out, no data) do not count toward a quorum; with
//! `count_abstentions = true` they count as votes to hold, so a fleet of
//! failing experts cannot let a minority move the pool.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Experts that must agree; default: more than half of those voting.
    #[serde(default)]
    pub k: Option<u32>,
    /// Count abstentions as votes to hold (they raise the default majority).
    #[serde(default)]
    pub count_abstentions: bool,
}

pub struct Quorum;

/// The median of `values` (sorted here). For an even count, of the two
/// middle values the smaller step: the lower one going up, the upper one
/// going down.
fn median_toward(values: &mut [f64], going_up: bool) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else if going_up {
        values[n / 2 - 1]
    } else {
        values[n / 2]
    }
}

impl Consensus for Quorum {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if s.k == Some(0) {
            return Err("k: at least one expert must agree".into());
        }
        Ok(())
    }

    fn evaluate(input: &ConsensusInput, s: &Settings, _: &mut ()) -> Result<Combined, String> {
        let current = input.pool.capacity();
        let voters: Vec<(&Vote, &Proposal)> = input.proposals().collect();
        if voters.is_empty() {
            return Err(format!("no expert proposed anything{}", input.abstention_note()));
        }
        let abstained = input.abstentions().count();
        let electorate = voters.len() + if s.count_abstentions { abstained } else { 0 };
        let k = s.k.map_or(electorate / 2 + 1, |k| k as usize);
        let side = |d: Direction| -> Vec<(&Vote, &Proposal)> { voters.iter().copied().filter(|(_, p)| Direction::of(p.desired, current) == d).collect() };
        let (up, down) = (side(Direction::Up), side(Direction::Down));
        let holds = electorate - up.len() - down.len();
        let tally = format!("{} up, {} down, {holds} hold of {electorate}; quorum {k}", up.len(), down.len());
        let carried = |group: &[(&Vote, &Proposal)], dir: Direction| {
            let mut values: Vec<f64> = group.iter().map(|(_, p)| p.desired).collect();
            let desired = median_toward(&mut values, dir == Direction::Up);
            let names: Vec<&str> = group.iter().map(|(v, _)| v.expert.as_str()).collect();
            let confidence = group.iter().map(|(_, p)| p.confidence.clamp(0.0, 1.0)).sum::<f64>() / electorate as f64;
            Combined { desired, confidence, explanation: format!("{} carried by {} ({tally}){}", dir.word(), names.join(", "), input.abstention_note()) }
        };
        if up.len() >= k {
            return Ok(carried(&up, Direction::Up));
        }
        if down.len() >= k {
            return Ok(carried(&down, Direction::Down));
        }
        Ok(Combined {
            desired: f64::from(current),
            confidence: holds as f64 / electorate as f64,
            explanation: format!("no quorum, holding at {current} ({tally}){}", input.abstention_note()),
        })
    }
}

export_consensus!(Quorum);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_consensus;

    fn vote(expert: &str, desired: Option<f64>) -> Vote {
        let ballot = match desired {
            Some(d) => Ballot::Proposed(Proposal::new(d, 0.8, format!("{expert} says {d}"))),
            None => Ballot::Abstained("trapped".into()),
        };
        Vote { expert: expert.into(), weight: 1.0, ballot }
    }

    /// The pool has 10.
    fn run(settings: &str, votes: Vec<Vote>) -> Result<ConsensusOutput, String> {
        run_consensus::<Quorum>(&ConsensusInput { pool: Pool { id: "p".into(), running: 10, booting: 0, min: 1, max: 100 }, votes, settings: settings.into(), ..Default::default() })
    }

    #[test]
    fn a_majority_up_moves_to_the_median_of_its_proposals() {
        let out = run("{}", vec![vote("a", Some(14.0)), vote("b", Some(20.0)), vote("c", Some(6.0))]).unwrap();
        // a and b are 2 of 3: up, to the smaller of the two middle values.
        assert_eq!(out.desired, 14.0);
        assert!(out.explanation.starts_with("scale up carried by a, b (2 up, 1 down, 0 hold of 3; quorum 2)"), "{}", out.explanation);
    }

    #[test]
    fn a_tie_holds() {
        let out = run("{}", vec![vote("a", Some(14.0)), vote("b", Some(6.0))]).unwrap();
        assert_eq!(out.desired, 10.0);
        assert!(out.explanation.starts_with("no quorum, holding at 10 (1 up, 1 down, 0 hold of 2; quorum 2)"), "{}", out.explanation);
    }

    #[test]
    fn all_disagreeing_holds() {
        let out = run("{}", vec![vote("a", Some(14.0)), vote("b", Some(6.0)), vote("c", Some(10.0))]).unwrap();
        assert_eq!(out.desired, 10.0);
        assert!(out.explanation.starts_with("no quorum"), "{}", out.explanation);
    }

    #[test]
    fn down_needs_its_own_quorum_and_takes_the_smaller_step() {
        let out = run("{}", vec![vote("a", Some(4.0)), vote("b", Some(8.0)), vote("c", Some(6.0)), vote("d", Some(7.0)), vote("e", Some(12.0))]).unwrap();
        // a, b, c, d are down: median of 4, 6, 7, 8, the upper middle: 7.
        assert_eq!(out.desired, 7.0);
        assert!(out.explanation.starts_with("scale down carried by a, b, c, d"), "{}", out.explanation);
    }

    #[test]
    fn abstentions_do_not_vote_unless_counted() {
        let votes = || vec![vote("a", Some(14.0)), vote("x", None), vote("y", None)];
        // Alone among voters, a is a majority of one.
        let out = run("{}", votes()).unwrap();
        assert_eq!(out.desired, 14.0);
        assert!(out.explanation.ends_with("; abstained: x (trapped), y (trapped)"), "{}", out.explanation);
        // Counted as holds, a is one of three: no quorum.
        let out = run(r#"{"count_abstentions":true}"#, votes()).unwrap();
        assert_eq!(out.desired, 10.0);
        assert!(run("{}", vec![vote("x", None)]).is_err());
    }

    #[test]
    fn an_explicit_k_can_let_one_expert_carry_and_up_wins_a_double_quorum() {
        let out = run(r#"{"k":1}"#, vec![vote("a", Some(14.0)), vote("b", Some(6.0))]).unwrap();
        assert_eq!(out.desired, 14.0);
        assert!(scalewise_sdk::validate_consensus::<Quorum>(r#"{"k":0}"#).unwrap_err().contains("k:"));
    }
}
