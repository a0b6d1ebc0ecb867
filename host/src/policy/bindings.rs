//! Host-side bindings for the three worlds, and conversions to the SDK's types.
//!
//! The strategy world is generated with borrowing parameters: its input
//! lends the SDK input's strings and sample columns to the call, which lowers
//! them straight into the guest's memory. A strategy runs for every pool on
//! every tick, so it is the one call where copying the input first showed
//! (about a tenth of a reused-instance call). Which types borrow depends on
//! how each world uses them, so the strategy world keeps its own copy of the
//! `types` interface; the cost-rule and consensus worlds share one (owned)
//! copy through `with`, and all three share the `log` import. Everything
//! outside this module works with `scalewise_sdk` types only.

use scalewise_sdk as sdk;

pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        // The contract's strategy world, plus an import that is never linked:
        // it mentions the types a strategy never passes, because wasmtime
        // 48's borrowing bindgen emits unused types borrowed but without
        // their lifetime, which does not compile.
        inline: "
            package scalewise:host;
            world strategy {
                include scalewise:policy/strategy@0.2.0;
                import unused: interface {
                    use scalewise:policy/types@0.2.0.{cost-input, cost-output, consensus-input, consensus-output};
                    never-called: func(c: cost-input, d: consensus-input) -> tuple<cost-output, consensus-output>;
                }
            }
        ",
        world: "scalewise:host/strategy",
        ownership: Borrowing { duplicate_if_necessary: true },
        with: {
            "scalewise:policy/log": super::cost_rule::scalewise::policy::log,
        },
    });
}

pub mod cost_rule {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "cost-rule",
    });
}

pub mod consensus {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "consensus",
        with: {
            "scalewise:policy/types": super::cost_rule::scalewise::policy::types,
            "scalewise:policy/log": super::cost_rule::scalewise::policy::log,
        },
    });
}

pub use cost_rule::scalewise::policy::{log, types as wit};
use strategy::scalewise::policy::types as lent;

fn pool(p: &sdk::Pool) -> wit::Pool {
    wit::Pool { id: p.id.clone(), running: p.running, booting: p.booting, min: p.min, max: p.max }
}

fn proposal(p: &sdk::Proposal) -> wit::Proposal {
    wit::Proposal { desired: p.desired, confidence: p.confidence, reason: p.reason.clone() }
}

fn metrics(windows: &[sdk::MetricWindow]) -> Vec<wit::MetricWindow> {
    windows
        .iter()
        .map(|m| wit::MetricWindow { name: m.name.clone(), times: m.times().to_vec(), values: m.values().to_vec() })
        .collect()
}

/// A strategy input, lent to a call: the lists of records, which the
/// borrowed input refers to as slices, built over the SDK input's own.
pub struct StrategyLoan<'a> {
    input: &'a sdk::StrategyInput,
    metrics: Vec<lent::MetricWindowParam<'a>>,
    actions: Vec<lent::Action<'a>>,
}

impl<'a> StrategyLoan<'a> {
    pub fn new(input: &'a sdk::StrategyInput) -> Self {
        let metrics = input.metrics.iter().map(|m| lent::MetricWindowParam { name: &m.name, times: m.times(), values: m.values() }).collect();
        let actions = input.recent_actions.iter().map(|a| lent::Action { at: a.at, from: a.from, to: a.to, reason: &a.reason }).collect();
        Self { input, metrics, actions }
    }

    /// `settings` replaces the input's own: the host's configuration is what counts.
    pub fn input(&'a self, settings: &'a str) -> lent::StrategyInput<'a> {
        let (i, p) = (self.input, &self.input.pool);
        lent::StrategyInput {
            pool: lent::PoolParam { id: &p.id, running: p.running, booting: p.booting, min: p.min, max: p.max },
            metrics: &self.metrics,
            now: i.now,
            recent_actions: &self.actions,
            settings,
            state: i.state.as_deref(),
        }
    }
}

pub fn strategy_output(o: lent::StrategyOutput) -> sdk::StrategyOutput {
    let p = o.proposal;
    sdk::StrategyOutput {
        proposal: sdk::Proposal { desired: p.desired, confidence: p.confidence, reason: p.reason },
        gauges: o.gauges.into_iter().map(|g| sdk::Gauge { name: g.name, value: g.value }).collect(),
        state: o.state,
    }
}

fn placement(p: &sdk::Placement) -> wit::Placement {
    wit::Placement { kind: p.kind.clone(), on_demand: p.on_demand, spot: p.spot }
}

/// `settings` replaces the input's own: the host's configuration is what counts.
pub fn cost_input(i: &sdk::CostInput, settings: &str) -> wit::CostInput {
    wit::CostInput {
        pool: pool(&i.pool),
        proposed: i.proposed,
        kind: i.kind.clone(),
        catalog: i
            .catalog
            .iter()
            .map(|k| wit::InstanceKind {
                name: k.name.clone(),
                provider: k.provider.clone(),
                region: k.region.clone(),
                on_demand_hourly: k.on_demand_hourly,
                spot_hourly: k.spot_hourly,
                reserved_hourly: k.reserved_hourly,
                vcpus: k.vcpus,
                memory_gib: k.memory_gib,
                gpus: k.gpus,
            })
            .collect(),
        budget: i.budget.map(|b| wit::Budget {
            limit: b.limit,
            period_hours: b.period_hours,
            spent: b.spent,
            elapsed_hours: b.elapsed_hours,
        }),
        placement: i.placement.as_ref().map(placement),
        metrics: metrics(&i.metrics),
        now: i.now,
        settings: settings.to_owned(),
        state: i.state.clone(),
    }
}

pub fn cost_output(o: wit::CostOutput) -> sdk::CostOutput {
    let verdict = match o.verdict {
        wit::Verdict::Allow => sdk::Verdict::Allow,
        wit::Verdict::Clamp(n) => sdk::Verdict::Clamp(n),
        wit::Verdict::Deny => sdk::Verdict::Deny,
    };
    let placement = o.placement.map(|p| sdk::Placement { kind: p.kind, on_demand: p.on_demand, spot: p.spot });
    sdk::CostOutput { verdict, cost_per_hour: o.cost_per_hour, reason: o.reason, placement, state: o.state }
}

/// `settings` replaces the input's own: the host's configuration is what counts.
pub fn consensus_input(i: &sdk::ConsensusInput, settings: &str) -> wit::ConsensusInput {
    wit::ConsensusInput {
        pool: pool(&i.pool),
        votes: i
            .votes
            .iter()
            .map(|v| wit::Vote {
                expert: v.expert.clone(),
                weight: v.weight,
                ballot: match &v.ballot {
                    sdk::Ballot::Proposed(p) => wit::Ballot::Proposed(proposal(p)),
                    sdk::Ballot::Abstained(why) => wit::Ballot::Abstained(why.clone()),
                },
            })
            .collect(),
        now: i.now,
        settings: settings.to_owned(),
        state: i.state.clone(),
    }
}

pub fn consensus_output(o: wit::ConsensusOutput) -> sdk::ConsensusOutput {
    sdk::ConsensusOutput {
        desired: o.desired,
        confidence: o.confidence,
        explanation: o.explanation,
        state: o.state,
    }
}
