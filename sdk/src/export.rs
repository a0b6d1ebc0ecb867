//! Turning a Rust type that implements a role trait into a wasm component.
//!
//! The SDK generates guest bindings for all three worlds. Only the imports
//! (the `log` interface, shared by all three) are described in the SDK's own
//! component-type section; each world's exports are described by the section
//! its export macro emits where it is invoked (`wit-bindgen`'s
//! `pub_export_macro`). So a component built from a policy crate declares
//! exactly the one world whose macro it invoked, and the SDK needs no feature
//! switches.
//!
//! On native targets the macros expand to nothing: the same crate compiles as
//! an ordinary library for unit tests and benchmarks.

/// Export a [`Strategy`](crate::Strategy) as this component's `strategy` world.
#[macro_export]
macro_rules! export_strategy {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::strategy as b;
            struct ScalewiseStrategy;
            impl b::exports::scalewise::policy::strategy_api::Guest for ScalewiseStrategy {
                fn validate_config(settings: String) -> Result<(), String> {
                    $crate::validate_strategy::<$ty>(&settings)
                }
                fn evaluate(
                    input: b::scalewise::policy::types::StrategyInput,
                ) -> Result<b::scalewise::policy::types::StrategyOutput, String> {
                    $crate::run_strategy::<$ty>(&input.into()).map(Into::into)
                }
            }
            $crate::bindings::strategy::__export_strategy_world!(ScalewiseStrategy with_types_in $crate::bindings::strategy);
        };
    };
}

/// Export a [`CostRule`](crate::CostRule) as this component's `cost-rule` world.
#[macro_export]
macro_rules! export_cost_rule {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::cost_rule as b;
            struct ScalewiseCostRule;
            impl b::exports::scalewise::policy::cost_rule_api::Guest for ScalewiseCostRule {
                fn validate_config(settings: String) -> Result<(), String> {
                    $crate::validate_cost_rule::<$ty>(&settings)
                }
                fn evaluate(
                    input: b::scalewise::policy::types::CostInput,
                ) -> Result<b::scalewise::policy::types::CostOutput, String> {
                    $crate::run_cost_rule::<$ty>(&input.into()).map(Into::into)
                }
            }
            $crate::bindings::cost_rule::__export_cost_rule_world!(ScalewiseCostRule with_types_in $crate::bindings::cost_rule);
        };
    };
}

/// Export a [`Consensus`](crate::Consensus) as this component's `consensus` world.
#[macro_export]
macro_rules! export_consensus {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::consensus as b;
            struct ScalewiseConsensus;
            impl b::exports::scalewise::policy::consensus_api::Guest for ScalewiseConsensus {
                fn validate_config(settings: String) -> Result<(), String> {
                    $crate::validate_consensus::<$ty>(&settings)
                }
                fn evaluate(
                    input: b::scalewise::policy::types::ConsensusInput,
                ) -> Result<b::scalewise::policy::types::ConsensusOutput, String> {
                    $crate::run_consensus::<$ty>(&input.into()).map(Into::into)
                }
            }
            $crate::bindings::consensus::__export_consensus_world!(ScalewiseConsensus with_types_in $crate::bindings::consensus);
        };
    };
}
