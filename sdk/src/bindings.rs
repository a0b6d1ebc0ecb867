//! Generated guest bindings, one module per world, wasm only.
//!
//! Each module also converts between its generated types and the SDK's own
//! [`crate::types`], so policy code never sees generated types. The
//! conversions are written once, as a macro, because `wit-bindgen` generates
//! the shared `types` interface anew inside each world's module.

macro_rules! type_conversions {
    () => {
        use crate::types as sdk;
        use scalewise::policy::types as wit;

        impl From<wit::MetricWindow> for sdk::MetricWindow {
            fn from(m: wit::MetricWindow) -> Self {
                Self::from_columns(m.name, m.times, m.values)
            }
        }
        impl From<wit::Pool> for sdk::Pool {
            fn from(p: wit::Pool) -> Self {
                Self { id: p.id, running: p.running, booting: p.booting, min: p.min, max: p.max }
            }
        }
        impl From<wit::Action> for sdk::Action {
            fn from(a: wit::Action) -> Self {
                Self { at: a.at, from: a.from, to: a.to, reason: a.reason }
            }
        }
        impl From<wit::Proposal> for sdk::Proposal {
            fn from(p: wit::Proposal) -> Self {
                Self { desired: p.desired, confidence: p.confidence, reason: p.reason }
            }
        }
        impl From<sdk::Proposal> for wit::Proposal {
            fn from(p: sdk::Proposal) -> Self {
                Self { desired: p.desired, confidence: p.confidence, reason: p.reason }
            }
        }
        impl From<wit::Placement> for sdk::Placement {
            fn from(p: wit::Placement) -> Self {
                Self { kind: p.kind, on_demand: p.on_demand, spot: p.spot }
            }
        }
        impl From<sdk::Placement> for wit::Placement {
            fn from(p: sdk::Placement) -> Self {
                Self { kind: p.kind, on_demand: p.on_demand, spot: p.spot }
            }
        }
    };
}

pub mod strategy {
    wit_bindgen::generate!({
        path: "wit",
        world: "strategy",
        pub_export_macro: true,
        export_macro_name: "__export_strategy_world",
        default_bindings_module: "scalewise_sdk::bindings::strategy",
    });
    type_conversions!();

    impl From<wit::StrategyInput> for sdk::StrategyInput {
        fn from(i: wit::StrategyInput) -> Self {
            Self {
                pool: i.pool.into(),
                metrics: i.metrics.into_iter().map(Into::into).collect(),
                now: i.now,
                recent_actions: i.recent_actions.into_iter().map(Into::into).collect(),
                settings: i.settings,
                state: i.state,
            }
        }
    }
    impl From<sdk::StrategyOutput> for wit::StrategyOutput {
        fn from(o: sdk::StrategyOutput) -> Self {
            let gauges = o.gauges.into_iter().map(|g| wit::Gauge { name: g.name, value: g.value }).collect();
            Self { proposal: o.proposal.into(), gauges, state: o.state }
        }
    }
}

pub mod cost_rule {
    wit_bindgen::generate!({
        path: "wit",
        world: "cost-rule",
        pub_export_macro: true,
        export_macro_name: "__export_cost_rule_world",
        default_bindings_module: "scalewise_sdk::bindings::cost_rule",
    });
    type_conversions!();

    impl From<wit::InstanceKind> for sdk::InstanceKind {
        fn from(k: wit::InstanceKind) -> Self {
            Self {
                name: k.name,
                provider: k.provider,
                region: k.region,
                on_demand_hourly: k.on_demand_hourly,
                spot_hourly: k.spot_hourly,
                reserved_hourly: k.reserved_hourly,
                vcpus: k.vcpus,
                memory_gib: k.memory_gib,
                gpus: k.gpus,
            }
        }
    }
    impl From<wit::CostInput> for sdk::CostInput {
        fn from(i: wit::CostInput) -> Self {
            Self {
                pool: i.pool.into(),
                proposed: i.proposed,
                kind: i.kind,
                catalog: i.catalog.into_iter().map(Into::into).collect(),
                budget: i.budget.map(|b| sdk::Budget {
                    limit: b.limit,
                    period_hours: b.period_hours,
                    spent: b.spent,
                    elapsed_hours: b.elapsed_hours,
                }),
                placement: i.placement.map(Into::into),
                metrics: i.metrics.into_iter().map(Into::into).collect(),
                now: i.now,
                settings: i.settings,
                state: i.state,
            }
        }
    }
    impl From<sdk::CostOutput> for wit::CostOutput {
        fn from(o: sdk::CostOutput) -> Self {
            let verdict = match o.verdict {
                sdk::Verdict::Allow => wit::Verdict::Allow,
                sdk::Verdict::Clamp(n) => wit::Verdict::Clamp(n),
                sdk::Verdict::Deny => wit::Verdict::Deny,
            };
            Self { verdict, cost_per_hour: o.cost_per_hour, reason: o.reason, placement: o.placement.map(Into::into), state: o.state }
        }
    }
}

pub mod consensus {
    wit_bindgen::generate!({
        path: "wit",
        world: "consensus",
        pub_export_macro: true,
        export_macro_name: "__export_consensus_world",
        default_bindings_module: "scalewise_sdk::bindings::consensus",
    });
    type_conversions!();

    impl From<wit::Vote> for sdk::Vote {
        fn from(v: wit::Vote) -> Self {
            let ballot = match v.ballot {
                wit::Ballot::Proposed(p) => sdk::Ballot::Proposed(p.into()),
                wit::Ballot::Abstained(why) => sdk::Ballot::Abstained(why),
            };
            Self { expert: v.expert, weight: v.weight, ballot }
        }
    }
    impl From<wit::ConsensusInput> for sdk::ConsensusInput {
        fn from(i: wit::ConsensusInput) -> Self {
            Self {
                pool: i.pool.into(),
                votes: i.votes.into_iter().map(Into::into).collect(),
                now: i.now,
                settings: i.settings,
                state: i.state,
            }
        }
    }
    impl From<sdk::ConsensusOutput> for wit::ConsensusOutput {
        fn from(o: sdk::ConsensusOutput) -> Self {
            Self {
                desired: o.desired,
                confidence: o.confidence,
                explanation: o.explanation,
                state: o.state,
            }
        }
    }
}
