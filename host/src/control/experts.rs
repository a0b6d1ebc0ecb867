//! The policy registry as the pipeline's [`Experts`]: the one place where
//! the control loop meets the sandbox, and only through the registry's own
//! types. A tracing span per evaluation carries the pool, policy and version.

use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, StrategyInput, StrategyOutput};

use crate::decide::pipeline::{Answer, Experts, NoAnswer};
use crate::policy::registry::RegistryError;
use crate::policy::{PolicyError, Registry, RoleInput};

fn call<I: RoleInput>(registry: &Registry, id: &str, input: &I) -> Result<Answer<I::Output>, NoAnswer> {
    let span = tracing::debug_span!("evaluate", pool = %input.pool().id, policy = %id, version = tracing::field::Empty);
    let _enter = span.enter();
    let e = registry.evaluate(id, input).map_err(|e| {
        tracing::debug!("failed: {e}");
        // Only a policy's own "no opinion" is a decline; a policy that
        // could not answer (no data, bad input) failed to, like a trap.
        let declined = matches!(&e, RegistryError::Policy(PolicyError::Declined(why)) if scalewise_sdk::is_no_opinion(why));
        NoAnswer { declined, why: e.to_string() }
    })?;
    span.record("version", e.generation);
    Ok(Answer { output: e.output, version: e.generation, fallback: e.fallback })
}

impl Experts for Registry {
    fn strategy(&self, id: &str, input: &StrategyInput) -> Result<Answer<StrategyOutput>, NoAnswer> {
        call(self, id, input)
    }

    fn consensus(&self, id: &str, input: &ConsensusInput) -> Result<Answer<ConsensusOutput>, NoAnswer> {
        call(self, id, input)
    }

    fn cost_rule(&self, id: &str, input: &CostInput) -> Result<Answer<CostOutput>, NoAnswer> {
        call(self, id, input)
    }
}
