//! The pipeline with scripted experts: every failure path ends in a held or
//! limited decision that says why.

use super::*;

/// Strategies answer `desired` from a table (missing id: an error);
/// consensus takes the max; the cost rule clamps at `cost_cap`.
struct Scripted {
    strategies: Vec<(&'static str, Result<f64, &'static str>)>,
    consensus_fails: bool,
    cost: Result<Option<u32>, &'static str>,
}

impl Experts for Scripted {
    fn strategy(&self, id: &str, input: &StrategyInput) -> Result<Answer<StrategyOutput>, NoAnswer> {
        let (_, r) = self.strategies.iter().find(|(s, _)| *s == id).ok_or("not loaded")?;
        let d = r.map_err(String::from)?;
        // State counts the calls, to show it is carried over.
        let n = input.state.as_ref().map_or(0, |s| s[0]) + 1;
        Ok(Answer { output: StrategyOutput { proposal: Proposal::new(d, 0.9, format!("{id} says {d}")), gauges: vec![], state: Some(vec![n]) }, version: 7, fallback: None })
    }
    fn consensus(&self, _: &str, input: &ConsensusInput) -> Result<Answer<ConsensusOutput>, NoAnswer> {
        if self.consensus_fails {
            return Err("trap: unreachable".into());
        }
        let d = input.votes.iter().filter_map(|v| v.proposal()).map(|p| p.desired).fold(0.0, f64::max);
        Ok(Answer { output: ConsensusOutput { desired: d, confidence: 1.0, explanation: "max".into(), state: None }, version: 1, fallback: None })
    }
    fn cost_rule(&self, _: &str, input: &CostInput) -> Result<Answer<CostOutput>, NoAnswer> {
        let cap = self.cost.map_err(String::from)?;
        let verdict = match cap {
            Some(n) if input.proposed > n => Verdict::Clamp(n),
            Some(_) | None => Verdict::Allow,
        };
        // Each rule puts half of what it lets through on spot, and says
        // which placement it was handed.
        let to = match verdict { Verdict::Clamp(n) => n, _ => input.proposed };
        let placement = Some(Placement { kind: Some("m".into()), on_demand: to - to / 2, spot: to / 2 });
        let reason = format!("cap; was handed {:?}", input.placement.as_ref().map(|p| (p.on_demand, p.spot)));
        Ok(Answer { output: CostOutput { verdict, cost_per_hour: 1.0, reason, placement, state: None }, version: 1, fallback: None })
    }
}

fn plan(strategies: &[&str], consensus: Option<&str>, cost: &[&str]) -> PoolPlan {
    PoolPlan {
        id: "web".into(),
        min: 1,
        max: 50,
        strategies: strategies.iter().map(|s| ExpertSpec { policy: s.to_string(), weight: 1.0 }).collect(),
        consensus: consensus.map(String::from),
        cost_rules: cost.iter().map(|s| s.to_string()).collect(),
        cost: CostSpec::default(),
        guardrails: Guardrails { tolerance: 0.0, scale_up_cooldown_secs: 0, scale_down_cooldown_secs: 0, scale_down_stabilization_secs: 0, scale_up_limits: vec![], scale_down_limits: vec![], manual_hold_secs: 0, rollback_after_faults: 0 },
        limits: vec![],
        instances: Default::default(),
        candidate: None,
    }
}

fn tick<'a>(plan: &'a PoolPlan, running: u32) -> TickInput<'a> {
    TickInput { plan, now: 1000, mode: Mode::Live, running, booting: 0, metrics: vec![], readings: vec![], recent: vec![], headroom: None, advice: None }
}

#[test]
fn a_failing_strategy_abstains_and_the_rest_decide() {
    let e = Scripted { strategies: vec![("a", Ok(8.0)), ("b", Err("timeout after 10ms"))], consensus_fails: false, cost: Ok(None) };
    let p = plan(&["a", "b"], Some("max"), &[]);
    let mut m = PoolMemory::default();
    let r = decide(&e, tick(&p, 4), &mut m);
    assert_eq!(r.desired, 8);
    assert_eq!(r.votes[1].abstained.as_deref(), Some("timeout after 10ms"));
    assert_eq!(r.seq, 1);
    let r = decide(&e, tick(&p, 4), &mut m);
    assert_eq!((r.seq, m.states["a"][0]), (2, 2), "state carried from call to call");
}

#[test]
fn consensus_failure_and_total_abstention_hold() {
    let e = Scripted { strategies: vec![("a", Ok(8.0))], consensus_fails: true, cost: Ok(None) };
    let r = decide(&e, tick(&plan(&["a"], Some("c"), &[]), 4), &mut PoolMemory::default());
    assert_eq!(r.desired, 4);
    assert!(r.consensus.explanation.contains("consensus failed"), "{}", r.consensus.explanation);
    let e = Scripted { strategies: vec![], consensus_fails: false, cost: Ok(None) };
    let r = decide(&e, tick(&plan(&["gone"], None, &[]), 4), &mut PoolMemory::default());
    assert_eq!(r.desired, 4);
    assert!(r.consensus.explanation.contains("abstained"));
}

#[test]
fn cost_rules_clamp_and_their_failure_blocks_scale_up() {
    let e = Scripted { strategies: vec![("a", Ok(20.0))], consensus_fails: false, cost: Ok(Some(12)) };
    let r = decide(&e, tick(&plan(&["a"], None, &["cap"]), 4), &mut PoolMemory::default());
    assert_eq!((r.proposed, r.desired, r.cost[0].verdict.as_str()), (12, 12, "clamp"));
    let e = Scripted { strategies: vec![("a", Ok(20.0))], consensus_fails: false, cost: Err("trap") };
    let r = decide(&e, tick(&plan(&["a"], None, &["cap"]), 4), &mut PoolMemory::default());
    assert_eq!((r.desired, r.cost[0].verdict.as_str()), (4, "error"));
    let e = Scripted { strategies: vec![("a", Ok(2.0))], consensus_fails: false, cost: Err("trap") };
    assert_eq!(decide(&e, tick(&plan(&["a"], None, &["cap"]), 4), &mut PoolMemory::default()).desired, 2, "scale-down still allowed");
}

#[test]
fn placements_chain_through_the_rules_and_feasibility_cuts_them() {
    let e = Scripted { strategies: vec![("a", Ok(20.0))], consensus_fails: false, cost: Ok(Some(12)) };
    let p = plan(&["a"], None, &["first", "second"]);
    let r = decide(&e, tick(&p, 4), &mut PoolMemory::default());
    assert!(r.cost[0].reason.ends_with("handed None"), "{}", r.cost[0].reason);
    assert!(r.cost[1].reason.ends_with("handed Some((6, 6))"), "{}", r.cost[1].reason);
    assert_eq!(r.placement.as_ref().map(|p| (p.on_demand, p.spot)), Some((6, 6)));
    // The target holds only 9: cut, spot first, and said why.
    let headroom = Some(Headroom { at_most: 9, why: "host memory: 3 more fit".into() });
    let r = decide(&e, TickInput { headroom, ..tick(&p, 4) }, &mut PoolMemory::default());
    let l = r.limited.as_ref().unwrap();
    assert_eq!((l.wanted, l.to, r.proposed, r.desired), (12, 9, 9, 9));
    assert_eq!(l.why, "host memory: 3 more fit");
    assert_eq!(r.placement.as_ref().map(|p| (p.on_demand, p.spot)), Some((6, 3)));
}

#[test]
fn guardrails_are_recorded() {
    let e = Scripted { strategies: vec![("a", Ok(80.0))], consensus_fails: false, cost: Ok(None) };
    let r = decide(&e, tick(&plan(&["a"], None, &[]), 4), &mut PoolMemory::default());
    assert_eq!(r.desired, 50);
    assert_eq!(r.clamps[0].guardrail, "bounds");
}

#[test]
fn a_rescaled_placement_keeps_its_spot_share() {
    let p = Placement { kind: Some("m".into()), on_demand: 3, spot: 7 };
    assert_eq!((rescale(p.clone(), 20).on_demand, rescale(p.clone(), 20).spot), (6, 14));
    assert_eq!((rescale(p.clone(), 4).on_demand, rescale(p, 4).spot), (1, 3));
    assert_eq!(rescale(Placement::default(), 5).on_demand, 5);
}

#[test]
fn the_mode_given_is_recorded_and_an_operator_change_is_live_and_numbered() {
    let e = Scripted { strategies: vec![("a", Ok(8.0))], consensus_fails: false, cost: Ok(None) };
    let p = plan(&["a"], None, &[]);
    let mut m = PoolMemory { paused: true, ..Default::default() };
    let r = decide(&e, TickInput { mode: Mode::Paused, ..tick(&p, 4) }, &mut m);
    assert_eq!((r.seq, r.mode, r.desired), (1, Mode::Paused, 8), "a paused pool still decides; the loop does not act");
    let change = OperatorChange { to: 6, cause: "manual", reason: "warming up", hold_secs: 0 };
    let r = operator(&p, &mut m, 2000, 4, 1, change);
    assert_eq!((r.seq, r.at, r.mode, r.running, r.booting), (2, 2000, Mode::Live, 4, 1));
    assert_eq!((r.proposed, r.desired, r.consensus.desired), (6, 6, Some(6.0)));
    assert_eq!((r.consensus.policy.as_str(), r.consensus.explanation.as_str()), ("manual", "warming up"));
    assert!(r.votes.is_empty() && r.clamps.is_empty() && r.action.is_none());
}

#[test]
fn the_advisors_vote_is_cast_after_the_strategies_and_weighed_by_the_consensus() {
    let e = Scripted { strategies: vec![("a", Ok(3.0))], consensus_fails: false, cost: Ok(None) };
    let p = plan(&["a"], Some("max"), &[]);
    let advice = AdvisorBallot { weight: 2.0, proposal: Some(Proposal::new(9.0, 0.7, "rising")), abstained: None, answered_at: Some(900) };
    let r = decide(&e, TickInput { advice: Some(advice.clone()), ..tick(&p, 4) }, &mut PoolMemory::default());
    assert_eq!(r.votes.iter().map(|v| v.expert.as_str()).collect::<Vec<_>>(), ["a", ADVISOR]);
    assert_eq!((r.votes[1].weight, r.desired), (2.0, 9));
    assert_eq!(r.advisor.unwrap().ballot, Some(advice));
    // An abstaining advisor proposes nothing: the strategies decide.
    let quiet = AdvisorBallot { weight: 2.0, proposal: None, abstained: Some("it has not answered yet".into()), answered_at: None };
    let r = decide(&e, TickInput { advice: Some(quiet), ..tick(&p, 4) }, &mut PoolMemory::default());
    assert_eq!((r.votes[1].abstained.as_deref(), r.desired), (Some("it has not answered yet"), 3));
}
