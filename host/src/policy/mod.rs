//! The policy sandbox: everything that loads, runs and swaps policies.
//!
//! Outside this module the host sees [`Policy`] (one loaded version of one
//! policy) and the [`Registry`] (the live set, swapped atomically), both
//! evaluated with a role's own input type and answering with that role's
//! output ([`RoleInput`]). It never sees wasmtime or rhai types: both
//! runtimes sit behind the private `Runtime` trait (in `role`), and both
//! answer with the same [`PolicyError`]s.
//!
//! A call to a [`Policy`] always passes through [`guard`]: whatever the
//! runtime returned is checked for sense before anything may act on it.

mod bindings;
pub mod cache;
pub mod component;
mod deadline;
pub mod engine;
pub mod error;
pub mod file;
pub mod versions;
pub mod guard;
pub mod producers;
pub mod registry;
pub mod remote;
mod rhai;
mod role;
pub mod status;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use scalewise_sdk::{Action, Ballot, ConsensusInput, CostInput, InstanceKind, MetricWindow, Pool, Proposal, Sample, StrategyInput, Vote};
use sha2::{Digest, Sha256};

use self::role::Runtime;

pub use self::engine::{Compiler, InstanceMode, PolicyEngine, PolicyLimits, SandboxOptions};
pub use self::error::{LoadError, PolicyError};
pub use self::registry::{Evaluation, Registry};
pub use self::role::{AnyInput, AnyOutput, Role, RoleInput};
pub use self::status::{PolicyStatus, StatusSnapshot};

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
            Err(fault) => return Err(LoadError::ValidateConfig(fault)),
        }
        policy.smoke()?;
        Ok(policy)
    }

    /// One call on a synthetic input. Declining (no data) is fine; a fault is not.
    fn smoke(&self) -> Result<(), LoadError> {
        let result = match AnyInput::sample(self.role()) {
            AnyInput::Strategy(i) => self.call_unrecorded(&i).map(drop),
            AnyInput::CostRule(i) => self.call_unrecorded(&i).map(drop),
            AnyInput::Consensus(i) => self.call_unrecorded(&i).map(drop),
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

    /// How calls get an instance, and why (components only).
    pub fn instances(&self) -> Option<String> {
        self.runtime.instances()
    }

    pub fn settings(&self) -> &str {
        &self.settings
    }

    pub fn status(&self) -> &Arc<PolicyStatus> {
        &self.status
    }

    /// Call in the sandbox and check the answer for sense.
    pub(crate) fn call_unrecorded<I: RoleInput>(&self, input: &I) -> Result<I::Output, PolicyError> {
        if I::ROLE != self.role() {
            return Err(PolicyError::WrongRole { expected: I::ROLE.as_str(), actual: self.role().as_str() });
        }
        let out = input.run(self.runtime.as_ref(), &self.settings)?;
        input.check(&out, &self.limits)?;
        Ok(out)
    }

    /// Call in the sandbox with `settings` in place of the configured ones
    /// (when given, and once `validate-config` accepts them), uncounted.
    pub(crate) fn call_with<I: RoleInput>(&self, input: &I, settings: Option<&str>) -> Result<I::Output, registry::RegistryError> {
        let Some(settings) = settings else { return Ok(self.call_unrecorded(input)?) };
        if I::ROLE != self.role() {
            return Err(PolicyError::WrongRole { expected: I::ROLE.as_str(), actual: self.role().as_str() }.into());
        }
        self.runtime.validate_config(settings)?.map_err(registry::RegistryError::Settings)?;
        let out = input.run(self.runtime.as_ref(), settings)?;
        input.check(&out, &self.limits)?;
        Ok(out)
    }

    /// Evaluate in the sandbox, check the answer, and count it in the status.
    pub fn evaluate<I: RoleInput>(&self, input: &I) -> Result<I::Output, PolicyError> {
        let started = Instant::now();
        let result = self.call_unrecorded(input);
        self.status.record_call(started.elapsed(), result.as_ref().map(|_| ()));
        result
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
