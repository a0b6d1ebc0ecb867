//! The policy registry as the pipeline's [`Experts`]: the one place where
//! the control loop meets the sandbox, and only through the registry's own
//! types. A tracing span per evaluation carries the pool, policy and version.

use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, StrategyInput, StrategyOutput};

use crate::decide::pipeline::{Answer, Experts};
use crate::policy::{PolicyInput, PolicyOutput, Registry};

fn call<T>(registry: &Registry, id: &str, input: PolicyInput<'_>, pick: impl FnOnce(PolicyOutput) -> Option<T>) -> Result<Answer<T>, String> {
    let span = tracing::debug_span!("evaluate", pool = %input.pool().id, policy = %id, version = tracing::field::Empty);
    let _enter = span.enter();
    let e = registry.evaluate(id, input).map_err(|e| {
        tracing::debug!("failed: {e}");
        e.to_string()
    })?;
    let version = e.generation;
    span.record("version", version);
    let output = pick(e.output).ok_or_else(|| format!("policy `{id}` has the wrong role for this slot"))?;
    Ok(Answer { output, version, fallback: e.fallback })
}

impl Experts for Registry {
    fn strategy(&self, id: &str, input: &StrategyInput) -> Result<Answer<StrategyOutput>, String> {
        call(self, id, PolicyInput::Strategy(input), |o| match o {
            PolicyOutput::Strategy(s) => Some(s),
            _ => None,
        })
    }

    fn consensus(&self, id: &str, input: &ConsensusInput) -> Result<Answer<ConsensusOutput>, String> {
        call(self, id, PolicyInput::Consensus(input), |o| match o {
            PolicyOutput::Consensus(c) => Some(c),
            _ => None,
        })
    }

    fn cost_rule(&self, id: &str, input: &CostInput) -> Result<Answer<CostOutput>, String> {
        call(self, id, PolicyInput::CostRule(input), |o| match o {
            PolicyOutput::CostRule(c) => Some(c),
            _ => None,
        })
    }
}
