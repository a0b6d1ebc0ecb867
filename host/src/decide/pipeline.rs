//! The decision pipeline: strategies → consensus → cost rules → feasibility
//! → guardrails.
//!
//! A pure function of its input: no clock (the time is a field), no I/O
//! (policies are reached through [`Experts`], which is CPU work in a
//! sandbox). The live loop, the simulator and the tests all call
//! [`decide`], so what one measures is what the others do.
//!
//! A policy that fails (error, timeout, trap, nonsense output) never stops a
//! decision: a strategy abstains with the reason; a consensus failure holds
//! the current capacity; a cost rule failure denies a scale-up (spending is
//! what it guards) and allows a scale-down.

use std::collections::BTreeMap;

use scalewise_sdk::{Action, Ballot, Budget, ConsensusInput, ConsensusOutput, CostInput, CostOutput, MetricWindow, Placement, Pool, Proposal, StrategyInput, StrategyOutput, Verdict, Vote};

pub use super::feasibility::{Headroom, MetricLimit};

use super::budget::CostSpec;
use super::guardrails::{self, Guardrails};
use super::memory::{PolicySet, PoolMemory};
use super::record::*;

/// An answer from a policy, and which version gave it.
pub struct Answer<T> {
    pub output: T,
    pub version: u64,
    pub fallback: Option<String>,
}

/// How the pipeline reaches policies, by id.
pub trait Experts: Send + Sync {
    fn strategy(&self, id: &str, input: &StrategyInput) -> Result<Answer<StrategyOutput>, NoAnswer>;
    fn consensus(&self, id: &str, input: &ConsensusInput) -> Result<Answer<ConsensusOutput>, NoAnswer>;
    fn cost_rule(&self, id: &str, input: &CostInput) -> Result<Answer<CostOutput>, NoAnswer>;
}

/// Why an expert gave no answer.
///
/// A strategy that says it has no opinion (`severity` at a calm level,
/// through the SDK's [`scalewise_sdk::no_opinion`]) is doing its job; a
/// trap, a timeout, nonsense, a policy that is not loaded, or a policy that
/// could not answer (no samples of its metric) is not. Both leave the vote
/// out of the consensus, but an operator reading "abstained 82,819 times"
/// must know which of the two it was, so votes, reports and the API count
/// them apart.
#[derive(Debug, Clone, PartialEq)]
pub struct NoAnswer {
    /// The policy chose not to vote.
    pub declined: bool,
    pub why: String,
}

impl NoAnswer {
    pub fn declined(why: impl Into<String>) -> Self {
        Self { declined: true, why: why.into() }
    }
}

/// Anything else is a failure to answer.
impl From<String> for NoAnswer {
    fn from(why: String) -> Self {
        Self { declined: false, why }
    }
}

impl From<&str> for NoAnswer {
    fn from(why: &str) -> Self {
        why.to_owned().into()
    }
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpertSpec {
    pub policy: String,
    pub weight: f64,
}

/// What a pool decides with.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPlan {
    pub id: String,
    pub min: u32,
    pub max: u32,
    pub strategies: Vec<ExpertSpec>,
    pub consensus: Option<String>,
    pub cost_rules: Vec<String>,
    pub cost: CostSpec,
    pub guardrails: Guardrails,
    /// Limits on a scale-up read from metrics (free GPU memory, ...).
    pub limits: Vec<MetricLimit>,
    /// Policy name → the registry id it is loaded under, where the pool has
    /// settings of its own for it (a policy instance). Votes, states and
    /// explanations use the name; only the call goes to the instance.
    pub instances: BTreeMap<String, String>,
    /// The candidate set evaluated in shadow on every tick: the same pool
    /// with its own strategies, consensus and cost rules.
    pub candidate: Option<Box<PoolPlan>>,
}

impl PoolPlan {
    /// The policies the serving set names: strategies, consensus, cost rules.
    pub fn policies(&self) -> impl Iterator<Item = &str> {
        self.strategies.iter().map(|s| s.policy.as_str()).chain(self.consensus.as_deref()).chain(self.cost_rules.iter().map(String::as_str))
    }

    /// The serving set, by name.
    pub fn set(&self) -> PolicySet {
        PolicySet { strategies: self.strategies.iter().map(|s| (s.policy.clone(), s.weight)).collect(), consensus: self.consensus.clone(), cost_rules: self.cost_rules.clone() }
    }

    /// Whether this plan's serving set is `set`.
    pub fn serves(&self, set: &PolicySet) -> bool {
        self.set() == *set
    }

    /// This plan with `set` serving instead (no candidate).
    pub fn with_set(&self, set: &PolicySet) -> PoolPlan {
        PoolPlan {
            strategies: set.strategies.iter().map(|(policy, weight)| ExpertSpec { policy: policy.clone(), weight: *weight }).collect(),
            consensus: set.consensus.clone(),
            cost_rules: set.cost_rules.clone(),
            candidate: None,
            ..self.clone()
        }
    }

    /// The set in words: `strategies [a, b], consensus c, cost rules [d]`.
    pub fn describe(&self) -> String {
        let strategies: Vec<&str> = self.strategies.iter().map(|s| s.policy.as_str()).collect();
        let mut out = format!("strategies [{}]", strategies.join(", "));
        if let Some(c) = &self.consensus {
            out.push_str(&format!(", consensus {c}"));
        }
        if !self.cost_rules.is_empty() {
            out.push_str(&format!(", cost rules [{}]", self.cost_rules.join(", ")));
        }
        out
    }

    /// The registry id to call for the policy the pool names `name`.
    pub fn instance<'a>(&'a self, name: &'a str) -> &'a str {
        self.instances.get(name).map_or(name, String::as_str)
    }
}

pub struct TickInput<'a> {
    pub plan: &'a PoolPlan,
    pub now: i64,
    /// How this decision may be taken ([`Mode::of`]).
    pub mode: Mode,
    pub running: u32,
    pub booting: u32,
    pub metrics: Vec<MetricWindow>,
    pub readings: Vec<MetricReading>,
    pub recent: Vec<Action>,
    /// What the target says it can hold, if it says (host memory, quota).
    pub headroom: Option<Headroom>,
    /// The advisor's vote, when the pool has a voting advisor: cast like a
    /// strategy's, after them, under the name `advisor`.
    pub advice: Option<AdvisorBallot>,
}

/// Decide. Updates `memory` (states, guardrail history, seq) and returns
/// the record; the caller acts on `record.desired` and fills in the action.
pub fn decide(experts: &dyn Experts, input: TickInput<'_>, memory: &mut PoolMemory) -> DecisionRecord {
    let plan = input.plan;
    let pool = Pool { id: plan.id.clone(), running: input.running, booting: input.booting, min: plan.min, max: plan.max };
    let current = pool.capacity();
    let digest = digest(&pool, &input.metrics, memory);
    let readings = input.readings;

    // Strategies.
    let mut votes = Vec::with_capacity(plan.strategies.len());
    let mut ballots = Vec::with_capacity(plan.strategies.len());
    // One input for every strategy; only the state differs between them.
    let mut si = StrategyInput { pool: pool.clone(), metrics: input.metrics, now: input.now, recent_actions: input.recent, settings: String::new(), state: None };
    for spec in &plan.strategies {
        si.state = memory.states.get(&spec.policy).cloned();
        let mut vote = ExpertVote { expert: spec.policy.clone(), weight: spec.weight, version: None, proposal: None, abstained: None, declined: false, fallback: None, gauges: Vec::new() };
        match experts.strategy(plan.instance(&spec.policy), &si) {
            Ok(a) => {
                store_state(memory, &spec.policy, a.output.state);
                vote.version = Some(a.version);
                vote.fallback = a.fallback;
                vote.gauges = a.output.gauges;
                ballots.push(Vote { expert: spec.policy.clone(), weight: spec.weight, ballot: Ballot::Proposed(a.output.proposal.clone()) });
                vote.proposal = Some(a.output.proposal);
            }
            Err(e) => {
                ballots.push(Vote { expert: spec.policy.clone(), weight: spec.weight, ballot: Ballot::Abstained(e.why.clone()) });
                vote.abstained = Some(e.why);
                vote.declined = e.declined;
            }
        }
        votes.push(vote);
    }
    let advice = input.advice;
    if let Some(b) = &advice {
        let ballot = match &b.proposal {
            Some(p) => Ballot::Proposed(p.clone()),
            None => Ballot::Abstained(b.abstained.clone().unwrap_or_default()),
        };
        ballots.push(Vote { expert: ADVISOR.into(), weight: b.weight, ballot });
        votes.push(ExpertVote { expert: ADVISOR.into(), weight: b.weight, version: None, proposal: b.proposal.clone(), abstained: b.abstained.clone(), declined: false, fallback: None, gauges: Vec::new() });
    }

    // Consensus.
    let consensus = combine(experts, plan, &pool, input.now, ballots, memory);

    // Cost rules, each seeing the previous one's answer and placement.
    let mut proposed = consensus.desired.map_or(current, guardrails::round_desired);
    let mut cost = Vec::with_capacity(plan.cost_rules.len());
    let mut placement: Option<Placement> = None;
    if consensus.desired.is_some() {
        let mut ci = CostInput { pool: pool.clone(), kind: plan.cost.kind.clone(), catalog: plan.cost.catalog.clone(), budget: budget(plan, memory, input.now), metrics: std::mem::take(&mut si.metrics), now: input.now, ..Default::default() };
        for id in &plan.cost_rules {
            ci.proposed = proposed;
            ci.placement = placement.clone();
            ci.state = memory.states.get(id).cloned();
            let (result, next) = run_cost_rule(experts, id, plan, &ci, memory);
            if next != proposed {
                // A clamp or a denial leaves the earlier placement for another
                // number: keep its spot share, which is what the rule priced.
                placement = placement.map(|p| rescale(p, next));
            }
            if let Some(p) = &result.placement {
                placement = Some(p.clone());
            }
            proposed = next;
            cost.push(result);
        }
        si.metrics = ci.metrics;
    }

    // Feasibility: a scale-up only as far as the target can hold it.
    let limited = super::feasibility::limit(input.headroom, &plan.limits, &si.metrics, current, input.booting, proposed);
    if let Some(l) = &limited {
        proposed = l.to;
        placement = placement.map(|p| shrink(p, l.to));
    }

    let guarded = guardrails::apply(&plan.guardrails, &mut memory.guard, input.now, current, plan.min, plan.max, proposed);
    DecisionRecord {
        input_digest: digest,
        metrics: readings,
        votes,
        consensus,
        cost,
        placement,
        limited,
        proposed,
        clamps: guarded.clamps,
        desired: guarded.desired,
        advisor: advice.map(|b| AdvisorRecord { ballot: Some(b), ..Default::default() }),
        ..record(plan, memory, input.now, input.mode, &pool)
    }
}

/// The name the advisor votes under (no policy of its pool may take it).
pub const ADVISOR: &str = "advisor";

/// An operator's change of capacity.
pub struct OperatorChange<'a> {
    pub to: u32,
    /// `manual` or `approval`.
    pub cause: &'a str,
    pub reason: &'a str,
    /// How long the target holds against the policies (0: not at all).
    pub hold_secs: u64,
}

/// An operator's change (a manual scale, an approved one): a decision of
/// its own in the pool's sequence, taken live whatever the pool's mode, with
/// no votes and no clamps. The caller has checked it against the bounds.
pub fn operator(plan: &PoolPlan, memory: &mut PoolMemory, now: i64, running: u32, booting: u32, change: OperatorChange<'_>) -> DecisionRecord {
    let pool = Pool { id: plan.id.clone(), running, booting, min: plan.min, max: plan.max };
    let OperatorChange { to, cause, reason, hold_secs } = change;
    memory.guard.manual(&plan.guardrails, now, to, hold_secs);
    let explanation = match hold_secs {
        0 => reason.to_owned(),
        s => format!("{reason} (held for {s}s: the policies vote but do not move the pool until then)"),
    };
    DecisionRecord {
        consensus: ConsensusResult { policy: cause.into(), desired: Some(f64::from(to)), confidence: 1.0, explanation },
        proposed: to,
        desired: to,
        ..record(plan, memory, now, Mode::Live, &pool)
    }
}

/// The one place a decision record is made: the next number in the pool's
/// sequence, with nothing decided yet (a hold at the current capacity).
fn record(plan: &PoolPlan, memory: &mut PoolMemory, at: i64, mode: Mode, pool: &Pool) -> DecisionRecord {
    memory.seq += 1;
    DecisionRecord {
        pool: plan.id.clone(),
        seq: memory.seq,
        at,
        mode,
        input_digest: String::new(),
        running: pool.running,
        booting: pool.booting,
        metrics: Vec::new(),
        votes: Vec::new(),
        consensus: ConsensusResult { policy: String::new(), desired: None, confidence: 0.0, explanation: String::new() },
        cost: Vec::new(),
        placement: None,
        limited: None,
        proposed: pool.capacity(),
        clamps: Vec::new(),
        desired: pool.capacity(),
        alerts: Vec::new(),
        action: None,
        shadow: None,
        lifecycle: None,
        inputs: None,
        advisor: None,
    }
}

/// What the candidate set `candidate` would decide on the tick's input, in
/// shadow: from a copy of the pool's guardrail memory and books (so its
/// cooldowns count the pool's real actions) and its own policy `states`,
/// which it updates. Nothing of the pool's own memory changes.
pub fn shadow(experts: &dyn Experts, candidate: &PoolPlan, input: TickInput<'_>, memory: &PoolMemory, states: &mut BTreeMap<String, Vec<u8>>) -> ShadowDecision {
    let mut m = PoolMemory { states: std::mem::take(states), ..memory.sans_states() };
    let r = decide(experts, TickInput { plan: candidate, ..input }, &mut m);
    *states = m.states;
    ShadowDecision { votes: r.votes, consensus: r.consensus, clamps: r.clamps, proposed: r.proposed, desired: r.desired }
}

/// A change to how the pool decides, as a record of its own in the pool's
/// sequence: no votes, the capacity held, `note` saying what changed.
pub fn lifecycle(plan: &PoolPlan, memory: &mut PoolMemory, now: i64, running: u32, booting: u32, cause: &str, note: String) -> DecisionRecord {
    let pool = Pool { id: plan.id.clone(), running, booting, min: plan.min, max: plan.max };
    let mut r = record(plan, memory, now, Mode::Live, &pool);
    r.consensus = ConsensusResult { policy: cause.into(), desired: None, confidence: 1.0, explanation: note.clone() };
    r.lifecycle = Some(note);
    r
}

fn store_state(memory: &mut PoolMemory, policy: &str, state: Option<Vec<u8>>) {
    match state {
        Some(s) => {
            memory.states.insert(policy.to_owned(), s);
        }
        None => {
            memory.states.remove(policy);
        }
    }
}

fn combine(experts: &dyn Experts, plan: &PoolPlan, pool: &Pool, now: i64, ballots: Vec<Vote>, memory: &mut PoolMemory) -> ConsensusResult {
    let proposals: Vec<(&str, &Proposal)> = ballots.iter().filter_map(|v| v.proposal().map(|p| (v.expert.as_str(), p))).collect();
    if proposals.is_empty() {
        return ConsensusResult { policy: plan.consensus.clone().unwrap_or("single".into()), desired: None, confidence: 0.0, explanation: "every expert abstained: holding".into() };
    }
    let Some(id) = &plan.consensus else {
        let (expert, p) = proposals[0];
        return ConsensusResult { policy: "single".into(), desired: Some(p.desired), confidence: p.confidence, explanation: format!("{expert} decides alone") };
    };
    let ci = ConsensusInput { pool: pool.clone(), votes: ballots, now, settings: String::new(), state: memory.states.get(id).cloned() };
    match experts.consensus(plan.instance(id), &ci) {
        Ok(a) => {
            store_state(memory, id, a.output.state);
            let mut explanation = a.output.explanation;
            if let Some(f) = a.fallback {
                explanation = format!("{explanation} (previous version answered: {f})");
            }
            ConsensusResult { policy: id.clone(), desired: Some(a.output.desired), confidence: a.output.confidence, explanation }
        }
        Err(e) => ConsensusResult { policy: id.clone(), desired: None, confidence: 0.0, explanation: format!("consensus failed, holding: {e}") },
    }
}

/// A placement for `to` members with the same spot share.
fn rescale(p: Placement, to: u32) -> Placement {
    let spot = if p.total() == 0 { 0 } else { ((f64::from(p.spot) * f64::from(to) / f64::from(p.total())).round() as u32).min(to) };
    Placement { kind: p.kind, on_demand: to - spot, spot }
}

/// Cut a placement to `to` members, spot first (the cheaper part is also
/// the part the provider can lose anyway).
fn shrink(p: Placement, to: u32) -> Placement {
    let spot = p.spot.min(to.saturating_sub(p.on_demand.min(to)));
    Placement { kind: p.kind, on_demand: to - spot, spot }
}

/// The budget as a cost rule sees it: the limit, the period's length, and
/// what was spent in it so far.
fn budget(plan: &PoolPlan, memory: &PoolMemory, now: i64) -> Option<Budget> {
    let limit = plan.cost.budget_limit?;
    let (start, end) = super::budget::period_bounds(plan.cost.budget_period, memory.period_start, now);
    Some(Budget {
        limit,
        period_hours: (end - start) as f64 / 3_600_000.0,
        spent: memory.spent,
        elapsed_hours: (now - start).max(0) as f64 / 3_600_000.0,
    })
}

fn run_cost_rule(experts: &dyn Experts, id: &str, plan: &PoolPlan, input: &CostInput, memory: &mut PoolMemory) -> (CostResult, u32) {
    let (current, proposed) = (input.pool.capacity(), input.proposed);
    match experts.cost_rule(plan.instance(id), input) {
        Ok(a) => {
            store_state(memory, id, a.output.state);
            let (verdict, clamp_to, next) = match a.output.verdict {
                Verdict::Allow => ("allow", None, proposed),
                Verdict::Clamp(n) => ("clamp", Some(n), n),
                Verdict::Deny => ("deny", None, current),
            };
            let result = CostResult { policy: id.into(), verdict: verdict.into(), clamp_to, cost_per_hour: Some(a.output.cost_per_hour), reason: a.output.reason, placement: a.output.placement };
            (result, next)
        }
        Err(e) => {
            let next = proposed.min(current);
            let reason = format!("{e}; a failing cost rule allows no scale-up");
            (CostResult { policy: id.into(), verdict: "error".into(), clamp_to: None, cost_per_hour: None, reason, placement: None }, next)
        }
    }
}

/// A 64-bit fingerprint of what the pipeline saw (capacity, metric windows,
/// policy states), to tell decisions on identical inputs apart in the
/// journal. Not a cryptographic hash: it guards against nothing, and being
/// word-at-a-time it costs a tenth of SHA-256 on a minute of samples.
fn digest(pool: &Pool, metrics: &[MetricWindow], memory: &PoolMemory) -> String {
    let mut h = Fingerprint::default();
    h.word(u64::from(pool.running) << 32 | u64::from(pool.booting));
    for m in metrics {
        h.bytes(m.name.as_bytes());
        for (&at, value) in m.times().iter().zip(m.values()) {
            h.word(at as u64);
            h.word(value.to_bits());
        }
    }
    for (k, v) in &memory.states {
        h.bytes(k.as_bytes());
        h.bytes(v);
    }
    format!("{:016x}", h.finish())
}

/// Multiply-xorshift over 64-bit words (the mixing of wyhash and friends).
#[derive(Default)]
struct Fingerprint(u64);

impl Fingerprint {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn word(&mut self, w: u64) {
        let x = (self.0 ^ w).wrapping_mul(Self::K);
        self.0 = x ^ (x >> 29);
    }

    fn bytes(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        // The length ends each field, so ("ab", "c") and ("a", "bc") differ.
        self.word(u64::from_le_bytes(last) ^ (b.len() as u64) << 56);
    }

    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(Self::K);
        x ^ (x >> 32)
    }
}

#[cfg(test)]
mod tests;
