//! The policy sandbox: everything that loads, runs and swaps policies.
//!
//! Outside this module the host sees [`Policy`] (one loaded version of one
//! policy, with typed `strategy` / `cost_rule` / `consensus` calls) and the
//! [`Registry`] (the live set, swapped atomically). It never sees wasmtime or
//! rhai types: both runtimes sit behind the private [`Runtime`] trait, and
//! both answer with the same [`PolicyError`]s.
//!
//! A call to a [`Policy`] always passes through [`guard`]: whatever the
//! runtime returned is checked for sense before anything may act on it.

mod bindings;
pub mod cache;
pub mod component;
mod deadline;
pub mod engine;
pub mod error;
pub mod guard;
pub mod registry;
mod rhai;
pub mod status;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use scalewise_sdk::{
    Action, Ballot, ConsensusInput, ConsensusOutput, CostInput, CostOutput, InstanceKind,
    MetricWindow, Pool, Proposal, Sample, StrategyInput, StrategyOutput, Vote,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use self::engine::{Compiler, InstanceMode, PolicyEngine, SandboxOptions};
pub use self::error::{LoadError, PolicyError};
pub use self::registry::{Evaluation, Registry};
pub use self::status::{PolicyStatus, StatusSnapshot};

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

/// An input for any role.
#[derive(Debug, Clone, Copy)]
pub enum PolicyInput<'a> {
    Strategy(&'a StrategyInput),
    CostRule(&'a CostInput),
    Consensus(&'a ConsensusInput),
}

impl PolicyInput<'_> {
    pub fn role(&self) -> Role {
        match self {
            PolicyInput::Strategy(_) => Role::Strategy,
            PolicyInput::CostRule(_) => Role::CostRule,
            PolicyInput::Consensus(_) => Role::Consensus,
        }
    }

    pub fn pool(&self) -> &Pool {
        match self {
            PolicyInput::Strategy(i) => &i.pool,
            PolicyInput::CostRule(i) => &i.pool,
            PolicyInput::Consensus(i) => &i.pool,
        }
    }
}

/// An output of any role.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PolicyOutput {
    Strategy(StrategyOutput),
    CostRule(CostOutput),
    Consensus(ConsensusOutput),
}

/// What both runtimes (components and rhai scripts) provide.
pub(crate) trait Runtime: Send + Sync {
    fn role(&self) -> Role;
    fn kind(&self) -> &'static str;
    /// `Ok(Err(msg))`: the policy rejected the settings; `Err`: it faulted.
    fn validate_config(&self, settings: &str) -> Result<Result<(), String>, PolicyError>;
    fn call(&self, input: PolicyInput<'_>, settings: &str) -> Result<PolicyOutput, PolicyError>;
}

/// One loaded, validated version of one policy.
pub struct Policy {
    pub id: Arc<str>,
    pub generation: u64,
    pub digest: String,
    pub source: PathBuf,
    pub loaded_at: SystemTime,
    /// `cranelift` or `winch` for components, `rhai` for scripts.
    pub compiled_by: &'static str,
    settings: String,
    runtime: Box<dyn Runtime>,
    status: Arc<PolicyStatus>,
    limits: guard::OutputLimits,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("role", &self.role())
            .field("digest", &self.digest)
            .finish()
    }
}

/// Where a policy comes from and what it is configured with.
pub struct PolicySource<'a> {
    pub id: &'a str,
    pub path: &'a Path,
    pub bytes: &'a [u8],
    pub settings: &'a str,
    pub generation: u64,
}

/// The hex SHA-256 of a policy file: its identity in status and cache.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Policy {
    /// Load, validate its settings, and make one smoke call, or say why not.
    pub fn load(engine: &Arc<PolicyEngine>, src: PolicySource<'_>, status: Arc<PolicyStatus>) -> Result<Policy, LoadError> {
        let ext = src.path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let runtime: Box<dyn Runtime> = match ext {
            "wasm" => Box::new(component::ComponentRuntime::load(engine, src.id, src.bytes, src.generation)?.0),
            "rhai" => Box::new(rhai::RhaiRuntime::load(engine.options(), src.id, src.bytes)?),
            _ => return Err(LoadError::UnsupportedFile(src.path.display().to_string())),
        };
        let policy = Policy {
            id: src.id.into(),
            generation: src.generation,
            digest: digest(src.bytes),
            source: src.path.to_owned(),
            loaded_at: SystemTime::now(),
            compiled_by: if ext == "wasm" { engine.options().compiler.as_str() } else { "rhai" },
            settings: src.settings.to_owned(),
            runtime,
            status,
            limits: engine.options().output,
        };
        match policy.runtime.validate_config(src.settings) {
            Ok(Ok(())) => {}
            Ok(Err(msg)) => return Err(LoadError::Config(msg)),
            Err(fault) => return Err(LoadError::Smoke(fault)),
        }
        policy.smoke()?;
        Ok(policy)
    }

    /// One call on a synthetic input. Declining (no data) is fine; a fault is not.
    fn smoke(&self) -> Result<(), LoadError> {
        let inputs = SmokeInputs::new();
        let result = match self.role() {
            Role::Strategy => self.call_unrecorded(PolicyInput::Strategy(&inputs.strategy)),
            Role::CostRule => self.call_unrecorded(PolicyInput::CostRule(&inputs.cost)),
            Role::Consensus => self.call_unrecorded(PolicyInput::Consensus(&inputs.consensus)),
        };
        match result {
            Err(e) if e.is_fault() => Err(LoadError::Smoke(e)),
            _ => Ok(()),
        }
    }

    pub fn role(&self) -> Role {
        self.runtime.role()
    }

    /// `wasm` or `rhai`.
    pub fn runtime_kind(&self) -> &'static str {
        self.runtime.kind()
    }

    pub fn settings(&self) -> &str {
        &self.settings
    }

    pub fn status(&self) -> &Arc<PolicyStatus> {
        &self.status
    }

    fn call_unrecorded(&self, input: PolicyInput<'_>) -> Result<PolicyOutput, PolicyError> {
        if input.role() != self.role() {
            return Err(PolicyError::WrongRole { expected: input.role().as_str(), actual: self.role().as_str() });
        }
        let out = self.runtime.call(input, &self.settings)?;
        let pool = input.pool();
        match (&out, input) {
            (PolicyOutput::Strategy(o), _) => guard::check_strategy(pool, o, &self.limits)?,
            (PolicyOutput::CostRule(o), PolicyInput::CostRule(i)) => guard::check_cost(pool, i.proposed, o, &self.limits)?,
            (PolicyOutput::Consensus(o), _) => guard::check_consensus(pool, o, &self.limits)?,
            (PolicyOutput::CostRule(_), _) => unreachable!("role checked above"),
        }
        Ok(out)
    }

    /// Evaluate in the sandbox, check the answer, and count it in the status.
    pub fn evaluate(&self, input: PolicyInput<'_>) -> Result<PolicyOutput, PolicyError> {
        let started = Instant::now();
        let result = self.call_unrecorded(input);
        self.status.record_call(started.elapsed(), result.as_ref().map(|_| ()));
        result
    }

    pub fn strategy(&self, input: &StrategyInput) -> Result<StrategyOutput, PolicyError> {
        match self.evaluate(PolicyInput::Strategy(input))? {
            PolicyOutput::Strategy(o) => Ok(o),
            _ => unreachable!("role checked by call_unrecorded"),
        }
    }

    pub fn cost_rule(&self, input: &CostInput) -> Result<CostOutput, PolicyError> {
        match self.evaluate(PolicyInput::CostRule(input))? {
            PolicyOutput::CostRule(o) => Ok(o),
            _ => unreachable!("role checked by call_unrecorded"),
        }
    }

    pub fn consensus(&self, input: &ConsensusInput) -> Result<ConsensusOutput, PolicyError> {
        match self.evaluate(PolicyInput::Consensus(input))? {
            PolicyOutput::Consensus(o) => Ok(o),
            _ => unreachable!("role checked by call_unrecorded"),
        }
    }
}

/// Plausible inputs for a smoke call: a small pool with a little of everything.
pub struct SmokeInputs {
    pub strategy: StrategyInput,
    pub cost: CostInput,
    pub consensus: ConsensusInput,
}

impl SmokeInputs {
    pub fn new() -> Self {
        let pool = Pool { id: "smoke".into(), running: 2, booting: 0, min: 1, max: 10 };
        let now = 1_700_000_000_000;
        let samples = |v: f64| (0..10).map(|i| Sample { at: now - 10_000 + i * 1000, value: v }).collect();
        let strategy = StrategyInput {
            pool: pool.clone(),
            metrics: vec![MetricWindow::new("cpu", samples(0.5)), MetricWindow::new("queue_depth", samples(4.0))],
            now,
            recent_actions: vec![Action { at: now - 60_000, from: 1, to: 2, reason: "smoke".into() }],
            settings: "{}".into(),
            state: None,
        };
        let cost = CostInput {
            pool: pool.clone(),
            proposed: 3,
            kind: Some("small".into()),
            catalog: vec![InstanceKind {
                name: "small".into(),
                on_demand_hourly: 0.1,
                spot_hourly: Some(0.03),
                vcpus: 2.0,
                memory_gib: 4.0,
                ..Default::default()
            }],
            budget: None,
            placement: None,
            metrics: strategy.metrics.clone(),
            now,
            settings: "{}".into(),
            state: None,
        };
        let consensus = ConsensusInput {
            pool,
            votes: vec![
                Vote { expert: "a".into(), weight: 1.0, ballot: Ballot::Proposed(Proposal::new(3.0, 0.9, "smoke")) },
                Vote { expert: "b".into(), weight: 1.0, ballot: Ballot::Abstained("smoke".into()) },
            ],
            now,
            settings: "{}".into(),
            state: None,
        };
        Self { strategy, cost, consensus }
    }
}

impl Default for SmokeInputs {
    fn default() -> Self {
        Self::new()
    }
}
