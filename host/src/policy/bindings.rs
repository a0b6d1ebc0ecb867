//! Host-side bindings for the three worlds, and conversions to the SDK's types.
//!
//! The worlds share the `types` and `log` interfaces; `with` makes all three
//! use the strategy world's copy, so each conversion exists once. Everything
//! outside this module works with `scalewise_sdk` types only.

use scalewise_sdk as sdk;

pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "strategy",
    });
}

pub mod cost_rule {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "cost-rule",
        with: {
            "scalewise:policy/types": super::strategy::scalewise::policy::types,
            "scalewise:policy/log": super::strategy::scalewise::policy::log,
        },
    });
}

pub mod consensus {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "consensus",
        with: {
            "scalewise:policy/types": super::strategy::scalewise::policy::types,
            "scalewise:policy/log": super::strategy::scalewise::policy::log,
        },
    });
}

pub use strategy::scalewise::policy::{log, types as wit};

fn pool(p: &sdk::Pool) -> wit::Pool {
    wit::Pool { id: p.id.clone(), running: p.running, booting: p.booting, min: p.min, max: p.max }
}

fn proposal(p: &sdk::Proposal) -> wit::Proposal {
    wit::Proposal { desired: p.desired, confidence: p.confidence, reason: p.reason.clone() }
}

fn metrics(windows: &[sdk::MetricWindow]) -> Vec<wit::MetricWindow> {
    windows
        .iter()
        .map(|m| wit::MetricWindow {
            name: m.name.clone(),
            times: m.samples.iter().map(|s| s.at).collect(),
            values: m.samples.iter().map(|s| s.value).collect(),
        })
        .collect()
}

fn placement(p: &sdk::Placement) -> wit::Placement {
    wit::Placement { kind: p.kind.clone(), on_demand: p.on_demand, spot: p.spot }
}

/// `settings` replaces the input's own: the host's configuration is what counts.
pub fn strategy_input(i: &sdk::StrategyInput, settings: &str) -> wit::StrategyInput {
    wit::StrategyInput {
        pool: pool(&i.pool),
        metrics: metrics(&i.metrics),
        now: i.now,
        recent_actions: i
            .recent_actions
            .iter()
            .map(|a| wit::Action { at: a.at, from: a.from, to: a.to, reason: a.reason.clone() })
            .collect(),
        settings: settings.to_owned(),
        state: i.state.clone(),
    }
}

pub fn strategy_output(o: wit::StrategyOutput) -> sdk::StrategyOutput {
    let p = o.proposal;
    sdk::StrategyOutput {
        proposal: sdk::Proposal { desired: p.desired, confidence: p.confidence, reason: p.reason },
        gauges: o.gauges.into_iter().map(|g| sdk::Gauge { name: g.name, value: g.value }).collect(),
        state: o.state,
    }
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
