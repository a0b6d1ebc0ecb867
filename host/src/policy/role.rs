//! The three roles a policy plays, as types.
//!
//! Why typed: the control loop calls a strategy with a [`StrategyInput`]
//! and wants a [`StrategyOutput`] back, never "some output" it must
//! unpack and may find to be of the wrong role. So each role's input type
//! implements [`RoleInput`], which names its output type and its [`Role`],
//! and carries the one role dispatch there is: which typed method of the
//! [`Runtime`] to call, and which sense check of [`guard`](super::guard) the
//! answer must pass. [`Policy::evaluate`](super::Policy::evaluate) and
//! [`Registry::evaluate`](super::Registry::evaluate) are generic over it.
//!
//! Callers that learn the role only at run time, from a policy file (the
//! `policy test` and `policy bench` commands, `POST /policies/{id}/evaluate`),
//! read an [`AnyInput`] from JSON and get an [`AnyOutput`]: the erased form
//! lives at those edges, not on the tick path.
//!
//! [`Runtime`] and the dispatch trait sit in this private module, so the
//! rest of the host sees neither; only [`Role`], [`RoleInput`], [`AnyInput`]
//! and [`AnyOutput`] are re-exported.

use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, Pool, StrategyInput, StrategyOutput};
use serde::Serialize;

use super::error::PolicyError;
use super::guard::{self, OutputLimits};
use super::registry::{Evaluation, Registry, RegistryError};
use super::{Policy, SmokeInputs};

/// The part a policy plays in a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Strategy,
    CostRule,
    Consensus,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Strategy => "strategy",
            Role::CostRule => "cost-rule",
            Role::Consensus => "consensus",
        }
    }

    /// The WIT world a component of this role implements.
    pub fn world(self) -> &'static str {
        self.as_str()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What both runtimes (components and rhai scripts) provide: one typed call
/// per role. A runtime asked for a role it does not play answers
/// [`PolicyError::WrongRole`]; [`Policy`] checks the role before calling.
pub trait Runtime: Send + Sync {
    fn role(&self) -> Role;
    fn kind(&self) -> &'static str;
    /// How calls get an instance (`fresh per call`, `warm`), and why; none
    /// for runtimes without instances.
    fn instances(&self) -> Option<String> {
        None
    }
    /// `Ok(Err(msg))`: the policy rejected the settings; `Err`: it faulted.
    fn validate_config(&self, settings: &str) -> Result<Result<(), String>, PolicyError>;
    fn strategy(&self, input: &StrategyInput, settings: &str) -> Result<StrategyOutput, PolicyError>;
    fn cost_rule(&self, input: &CostInput, settings: &str) -> Result<CostOutput, PolicyError>;
    fn consensus(&self, input: &ConsensusInput, settings: &str) -> Result<ConsensusOutput, PolicyError>;
}

/// The input of one role: what a policy of that role is called with.
/// Implemented by [`StrategyInput`], [`CostInput`] and [`ConsensusInput`]
/// only.
pub trait RoleInput: Dispatch + Sync {
    /// What a policy of this role answers.
    type Output: Serialize + Send;
    const ROLE: Role;
    fn pool(&self) -> &Pool;
}

/// The role dispatch, kept out of reach of the rest of the host.
pub trait Dispatch {
    /// Call the runtime's method for this role.
    fn run(&self, runtime: &dyn Runtime, settings: &str) -> Result<<Self as RoleInput>::Output, PolicyError>
    where
        Self: RoleInput;

    /// The sense checks on this role's answer.
    fn check(&self, out: &<Self as RoleInput>::Output, limits: &OutputLimits) -> Result<(), PolicyError>
    where
        Self: RoleInput;
}

impl RoleInput for StrategyInput {
    type Output = StrategyOutput;
    const ROLE: Role = Role::Strategy;
    fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Dispatch for StrategyInput {
    fn run(&self, runtime: &dyn Runtime, settings: &str) -> Result<StrategyOutput, PolicyError> {
        runtime.strategy(self, settings)
    }
    fn check(&self, out: &StrategyOutput, limits: &OutputLimits) -> Result<(), PolicyError> {
        guard::check_strategy(&self.pool, out, limits)
    }
}

impl RoleInput for CostInput {
    type Output = CostOutput;
    const ROLE: Role = Role::CostRule;
    fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Dispatch for CostInput {
    fn run(&self, runtime: &dyn Runtime, settings: &str) -> Result<CostOutput, PolicyError> {
        runtime.cost_rule(self, settings)
    }
    fn check(&self, out: &CostOutput, limits: &OutputLimits) -> Result<(), PolicyError> {
        guard::check_cost(&self.pool, self.proposed, out, limits)
    }
}

impl RoleInput for ConsensusInput {
    type Output = ConsensusOutput;
    const ROLE: Role = Role::Consensus;
    fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl Dispatch for ConsensusInput {
    fn run(&self, runtime: &dyn Runtime, settings: &str) -> Result<ConsensusOutput, PolicyError> {
        runtime.consensus(self, settings)
    }
    fn check(&self, out: &ConsensusOutput, limits: &OutputLimits) -> Result<(), PolicyError> {
        guard::check_consensus(self, out, limits)
    }
}

/// An input of whichever role a policy turns out to play, read from JSON.
#[derive(Debug, Clone)]
pub enum AnyInput {
    Strategy(StrategyInput),
    CostRule(CostInput),
    Consensus(ConsensusInput),
}

/// The answer to an [`AnyInput`]; it serialises as the role's own output.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AnyOutput {
    Strategy(StrategyOutput),
    CostRule(CostOutput),
    Consensus(ConsensusOutput),
}

impl AnyInput {
    /// Read `role`'s input from JSON. Its `settings` may be a JSON object
    /// (as a person writes them) or JSON text (as the host passes them).
    pub fn parse(role: Role, mut value: serde_json::Value) -> Result<Self, serde_json::Error> {
        if let Some(settings) = value.get_mut("settings").filter(|s| !s.is_string() && !s.is_null()) {
            *settings = serde_json::Value::String(settings.to_string());
        }
        Ok(match role {
            Role::Strategy => AnyInput::Strategy(serde_json::from_value(value)?),
            Role::CostRule => AnyInput::CostRule(serde_json::from_value(value)?),
            Role::Consensus => AnyInput::Consensus(serde_json::from_value(value)?),
        })
    }

    /// The synthetic input a policy of `role` is smoke-tested with.
    pub fn sample(role: Role) -> Self {
        let inputs = SmokeInputs::new();
        match role {
            Role::Strategy => AnyInput::Strategy(inputs.strategy),
            Role::CostRule => AnyInput::CostRule(inputs.cost),
            Role::Consensus => AnyInput::Consensus(inputs.consensus),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            AnyInput::Strategy(_) => Role::Strategy,
            AnyInput::CostRule(_) => Role::CostRule,
            AnyInput::Consensus(_) => Role::Consensus,
        }
    }

    /// Evaluate on one version, counted in its status.
    pub fn evaluate(&self, policy: &Policy) -> Result<AnyOutput, PolicyError> {
        Ok(match self {
            AnyInput::Strategy(i) => AnyOutput::Strategy(policy.evaluate(i)?),
            AnyInput::CostRule(i) => AnyOutput::CostRule(policy.evaluate(i)?),
            AnyInput::Consensus(i) => AnyOutput::Consensus(policy.evaluate(i)?),
        })
    }

    /// Evaluate on whatever version of `id` serves, with its fallback.
    pub fn evaluate_in(&self, registry: &Registry, id: &str) -> Result<Evaluation<AnyOutput>, RegistryError> {
        Ok(match self {
            AnyInput::Strategy(i) => registry.evaluate(id, i)?.map(AnyOutput::Strategy),
            AnyInput::CostRule(i) => registry.evaluate(id, i)?.map(AnyOutput::CostRule),
            AnyInput::Consensus(i) => registry.evaluate(id, i)?.map(AnyOutput::Consensus),
        })
    }

    /// Try the serving version of `id` on this input, as `POST
    /// /policies/ID/evaluate` does: checked like any call, but counted in
    /// no live counter and with no fallback, so a caller's experiments
    /// cannot make a policy look faulty.
    /// With `own_settings`, the input's settings replace the configured
    /// ones for this call, as `scalewise policy test` uses them.
    pub fn try_in(&self, registry: &Registry, id: &str, own_settings: bool) -> Result<Evaluation<AnyOutput>, RegistryError> {
        let settings = own_settings.then_some(match self {
            AnyInput::Strategy(i) => i.settings.as_str(),
            AnyInput::CostRule(i) => i.settings.as_str(),
            AnyInput::Consensus(i) => i.settings.as_str(),
        });
        Ok(match self {
            AnyInput::Strategy(i) => registry.try_out(id, i, settings)?.map(AnyOutput::Strategy),
            AnyInput::CostRule(i) => registry.try_out(id, i, settings)?.map(AnyOutput::CostRule),
            AnyInput::Consensus(i) => registry.try_out(id, i, settings)?.map(AnyOutput::Consensus),
        })
    }
}
