//! WebAssembly component policies: load, validate, and call in the sandbox.
//!
//! Loading inspects the component before trusting it: it must be a component
//! (not a core module), export exactly one scalewise world, have been built
//! against a compatible version of the `scalewise:policy` package, and import
//! nothing but the `log` interface and (denied) WASI. Only then is it linked
//! into an `InstancePre` (one per policy version, the `Pre` object that makes
//! each instantiation cheap). A call then instantiates in a fresh store (or
//! reuses a warm instance), with a deadline and a memory cap, and turns every
//! way it can fail into a [`PolicyError`] the host can act on.

use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{self, consensus, cost_rule, strategy};
use super::engine::{HostState, InstanceMode, KIT_ERROR_PREFIX, LogContext, PolicyEngine, WARM_ABOVE, arm_deadline, flush_guest_output};
use super::error::{LoadError, PolicyError};
use super::role::{Role, Runtime};
use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, StrategyInput, StrategyOutput};

/// The contract version this host speaks. Components built against any
/// `0.2.x` are compatible (for 0.x packages the minor is the breaking part).
/// 0.2 added placements, gauges, catalog providers and regions, and the
/// metric windows to cost rules.
pub const CONTRACT_VERSION: &str = "0.2.0";
const PACKAGE: &str = "scalewise:policy";

enum WorldPre {
    Strategy(strategy::StrategyPre<HostState>),
    CostRule(cost_rule::CostRulePre<HostState>),
    Consensus(consensus::ConsensusPre<HostState>),
}

/// What a guest's `evaluate` returned: a trap, or its answer or refusal.
type WorldResult<T> = wasmtime::Result<Result<T, String>>;

enum WorldInstance {
    Strategy(strategy::Strategy),
    CostRule(cost_rule::CostRule),
    Consensus(consensus::Consensus),
}

struct Warm {
    store: Store<HostState>,
    instance: WorldInstance,
    calls: u64,
}

/// One loaded version of a component policy.
pub(crate) struct ComponentRuntime {
    engine: Arc<PolicyEngine>,
    role: Role,
    pre: WorldPre,
    uses_wasi: bool,
    log: LogContext,
    warm: Mutex<Vec<Warm>>,
    /// This policy's call deadline and instance mode (never `Auto`): the
    /// engine's, or its own limits, or what its measured cost says.
    deadline: std::time::Duration,
    mode: InstanceMode,
    /// What one fresh instance cost when the policy loaded, if measured.
    fresh_cost: Option<std::time::Duration>,
    language: Option<String>,
}

/// What a component's exports and imports say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    pub role: Role,
    /// The language its producers sections name (`Python`, `JavaScript`, `Rust`).
    pub language: Option<String>,
    pub contract: String,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub uses_wasi: bool,
}

/// A duration as an operator reads it: `38 µs`, `3.8 ms`.
fn short(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_millis(1) { format!("{} µs", d.as_micros()) } else { format!("{:.1} ms", d.as_secs_f64() * 1e3) }
}

/// Check the binary header: a component, not a core module or something else.
pub fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    match bytes[6..8] {
        [1, 0] => Ok(()),
        [0, 0] => Err(LoadError::CoreModule),
        _ => Err(LoadError::NotWasm),
    }
}

/// Split `ns:pkg/iface@1.2.3` into (`ns:pkg`, `iface`, `1.2.3`).
fn parse_name(name: &str) -> Option<(&str, &str, &str)> {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    let (package, iface) = path.split_once('/')?;
    Some((package, iface, version))
}

fn compatible(version: &str) -> bool {
    let mut ours = CONTRACT_VERSION.split('.');
    let mut theirs = version.split('.');
    // 0.x: major and minor must match; 1.x and up: the major must.
    let (om, on) = (ours.next(), ours.next());
    let (tm, tn) = (theirs.next(), theirs.next());
    if om == Some("0") { om == tm && on == tn } else { om == tm }
}

/// Work out the role and contract version from the component's type.
pub fn inspect(engine: &wasmtime::Engine, component: &Component) -> Result<ComponentInfo, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut found = None;
    for name in &exports {
        let Some((package, iface, version)) = parse_name(name) else { continue };
        let role = match iface {
            "strategy-api" => Role::Strategy,
            "cost-rule-api" => Role::CostRule,
            "consensus-api" => Role::Consensus,
            _ => continue,
        };
        if package != PACKAGE {
            continue;
        }
        if !compatible(version) {
            return Err(LoadError::IncompatibleVersion {
                found: format!("{PACKAGE}@{version}"),
                supported: CONTRACT_VERSION,
            });
        }
        found = Some((role, format!("{PACKAGE}@{version}")));
    }
    let Some((role, contract)) = found else {
        let found = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
        return Err(LoadError::UnknownWorld { found });
    };
    let mut uses_wasi = false;
    for name in &imports {
        match parse_name(name) {
            Some((PACKAGE, "log" | "types", v)) if compatible(v) => {}
            Some((PACKAGE, _, v)) if !compatible(v) => {
                return Err(LoadError::IncompatibleVersion {
                    found: format!("{PACKAGE}@{v}"),
                    supported: CONTRACT_VERSION,
                });
            }
            Some((p, _, _)) if p.starts_with("wasi:") => uses_wasi = true,
            _ => return Err(LoadError::ForbiddenImport(name.clone())),
        }
    }
    Ok(ComponentInfo { role, contract, exports, imports, uses_wasi, language: None })
}

/// Compile (or fetch from the cache) and inspect, without linking.
pub fn compile(engine: &PolicyEngine, bytes: &[u8]) -> Result<(Component, ComponentInfo), LoadError> {
    check_header(bytes)?;
    let component = match &engine.cache {
        Some(cache) => cache.get_or_compile(&engine.engine, bytes),
        None => Component::new(&engine.engine, bytes),
    }
    .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let mut info = inspect(&engine.engine, &component)?;
    info.language = super::producers::language(bytes);
    Ok((component, info))
}

impl ComponentRuntime {
    pub(crate) fn load(
        engine: &Arc<PolicyEngine>,
        id: &str,
        bytes: &[u8],
        generation: u64,
    ) -> Result<(Self, ComponentInfo), LoadError> {
        let (component, info) = compile(engine, bytes)?;
        let world = info.role.world();
        let link = |e: wasmtime::Error| LoadError::Link { world, detail: format!("{e:#}") };
        let instance_pre = engine.linker.instantiate_pre(&component).map_err(link)?;
        let pre = match info.role {
            Role::Strategy => WorldPre::Strategy(strategy::StrategyPre::new(instance_pre).map_err(link)?),
            Role::CostRule => WorldPre::CostRule(cost_rule::CostRulePre::new(instance_pre).map_err(link)?),
            Role::Consensus => WorldPre::Consensus(consensus::ConsensusPre::new(instance_pre).map_err(link)?),
        };
        let log = LogContext { policy: id.into(), generation, messages: 0 };
        let limits = engine.options.per_policy.get(id).copied().unwrap_or_default();
        let mut runtime = Self {
            engine: engine.clone(),
            role: info.role,
            pre,
            uses_wasi: info.uses_wasi,
            log,
            warm: Mutex::new(Vec::new()),
            deadline: engine.options.deadline_for(id),
            mode: InstanceMode::Fresh,
            fresh_cost: None,
            language: info.language.clone(),
        };
        runtime.mode = match limits.instance_mode.unwrap_or(engine.options.instance_mode) {
            InstanceMode::Auto { max_calls } => runtime.measure(max_calls),
            mode => mode,
        };
        Ok((runtime, info))
    }

    /// Time a fresh instance and one call on it (the best of up to three,
    /// so that paging in freshly compiled code or a busy neighbour is not
    /// counted) and choose the mode from it. A
    /// policy that runs warm keeps the instance as its first. One that
    /// cannot be instantiated stays fresh: loading reports why.
    fn measure(&mut self, max_calls: u64) -> InstanceMode {
        let mut best = None;
        let mut kept = None;
        for _ in 0..3 {
            // A fresh instance and its first call: an interpreter's first
            // call into fresh memory is most of what a fresh instance costs
            // (for JavaScript, more than making the instance).
            let started = std::time::Instant::now();
            let Ok((mut store, instance)) = self.instantiate() else { return InstanceMode::Fresh };
            if self.validate_in(&mut store, &instance, "{}").is_err() {
                return InstanceMode::Fresh;
            }
            let took = started.elapsed();
            best = Some(best.map_or(took, |b: std::time::Duration| b.min(took)));
            kept = Some((store, instance));
            if took < WARM_ABOVE {
                break;
            }
        }
        self.fresh_cost = best;
        if best.is_some_and(|b| b >= WARM_ABOVE) {
            if let Some((store, instance)) = kept {
                self.warm.get_mut().unwrap().push(Warm { store, instance, calls: 0 });
            }
            InstanceMode::Warm { max_calls }
        } else {
            InstanceMode::Fresh
        }
    }

    /// `fresh` or `warm`, and why, for `policy check` and the status.
    pub(crate) fn instances(&self) -> String {
        let mode = match self.mode {
            InstanceMode::Fresh => "fresh per call",
            _ => "warm (reused)",
        };
        match self.fresh_cost {
            Some(c) => format!("{mode}: a fresh instance and call cost {}, deadline {} ms", short(c), self.deadline.as_millis()),
            None => format!("{mode}, deadline {} ms", self.deadline.as_millis()),
        }
    }

    fn instantiate(&self) -> Result<(Store<HostState>, WorldInstance), PolicyError> {
        let mut store = self.engine.new_store(self.log.clone(), self.uses_wasi);
        let instance = match &self.pre {
            WorldPre::Strategy(p) => p.instantiate(&mut store).map(WorldInstance::Strategy),
            WorldPre::CostRule(p) => p.instantiate(&mut store).map(WorldInstance::CostRule),
            WorldPre::Consensus(p) => p.instantiate(&mut store).map(WorldInstance::Consensus),
        }
        .map_err(|e| self.classify(e, None))?;
        // The call's own deadline starts now.
        arm_deadline(&mut store, self.deadline);
        Ok((store, instance))
    }

    /// Turn a wasmtime error into what happened, in the user's terms.
    fn classify(&self, err: wasmtime::Error, stderr_tail: Option<String>) -> PolicyError {
        let limit = self.engine.options.memory_limit;
        if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
            return match trap {
                wasmtime::Trap::Interrupt => PolicyError::Timeout(self.deadline),
                wasmtime::Trap::StackOverflow => PolicyError::Trap("call stack exhausted (runaway recursion?)".into()),
                // A kit said what went wrong before the interpreter gave
                // up: that is the whole story.
                _ if stderr_tail.as_deref().is_some_and(|t| t.starts_with(KIT_ERROR_PREFIX)) => {
                    let said = &stderr_tail.unwrap()[KIT_ERROR_PREFIX.len()..];
                    PolicyError::Trap(format!("{} error: {said}", self.language.as_deref().unwrap_or("policy")))
                }
                other => {
                    let mut msg = other.to_string();
                    match other {
                        wasmtime::Trap::UnreachableCodeReached => msg.push_str(" (a panic or abort in the policy)"),
                        // Rust and C guests keep their stack in linear memory,
                        // below the data: overflowing it lands out of bounds.
                        wasmtime::Trap::MemoryOutOfBounds => msg.push_str(" (a stack overflow in the policy, or a bad pointer)"),
                        _ => {}
                    }
                    if let Some(tail) = stderr_tail {
                        msg = format!("{msg}; the policy printed: {tail}");
                    }
                    if let Some(lang) = self.language.as_deref().filter(|l| *l != "Rust") {
                        msg = format!("{lang}: {msg}");
                    }
                    PolicyError::Trap(msg)
                }
            };
        }
        // Not a wasm trap: an error raised by the host on the guest's behalf,
        // under a wasm backtrace. Its root cause says what happened.
        let cause = err.root_cause().to_string();
        if cause.contains("forcing trap when growing memory") || cause.contains("forcing a memory growth failure") {
            return PolicyError::MemoryCap(limit);
        }
        PolicyError::Trap(cause)
    }

    /// Run `role`'s call on an instance: `call` returns `None` when the
    /// instance is of another world. The guest's output is flushed to the
    /// log and a fault is put in the user's terms.
    fn invoke<T>(
        &self,
        store: &mut Store<HostState>,
        instance: &WorldInstance,
        role: Role,
        call: impl FnOnce(&mut Store<HostState>, &WorldInstance) -> Option<WorldResult<T>>,
    ) -> Result<T, PolicyError> {
        let Some(result) = call(&mut *store, instance) else {
            return Err(PolicyError::WrongRole { expected: role.as_str(), actual: self.role.as_str() });
        };
        let stderr_tail = flush_guest_output(store.data_mut());
        match result {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(declined)) => Err(PolicyError::Declined(declined)),
            Err(e) => Err(self.classify(e, stderr_tail)),
        }
    }

    fn validate_in(&self, store: &mut Store<HostState>, instance: &WorldInstance, settings: &str) -> Result<Result<(), String>, PolicyError> {
        let r = match instance {
            WorldInstance::Strategy(s) => s.scalewise_policy_strategy_api().call_validate_config(&mut *store, settings),
            WorldInstance::CostRule(c) => c.scalewise_policy_cost_rule_api().call_validate_config(&mut *store, settings),
            WorldInstance::Consensus(c) => c.scalewise_policy_consensus_api().call_validate_config(&mut *store, settings),
        };
        let tail = flush_guest_output(store.data_mut());
        r.map_err(|e| self.classify(e, tail))
    }
}

impl Runtime for ComponentRuntime {
    fn role(&self) -> Role {
        self.role
    }

    fn kind(&self) -> &'static str {
        "wasm"
    }

    fn instances(&self) -> Option<String> {
        Some(ComponentRuntime::instances(self))
    }

    fn validate_config(&self, settings: &str) -> Result<Result<(), String>, PolicyError> {
        let (mut store, instance) = self.instantiate()?;
        self.validate_in(&mut store, &instance, settings)
    }

    fn strategy(&self, input: &StrategyInput, settings: &str) -> Result<StrategyOutput, PolicyError> {
        self.call(Role::Strategy, |store, instance| match instance {
            WorldInstance::Strategy(s) => {
                let loan = bindings::StrategyLoan::new(input);
                Some(s.scalewise_policy_strategy_api().call_evaluate(store, loan.input(settings)).map(|r| r.map(bindings::strategy_output)))
            }
            _ => None,
        })
    }

    fn cost_rule(&self, input: &CostInput, settings: &str) -> Result<CostOutput, PolicyError> {
        self.call(Role::CostRule, |store, instance| match instance {
            WorldInstance::CostRule(c) => {
                let wit = bindings::cost_input(input, settings);
                Some(c.scalewise_policy_cost_rule_api().call_evaluate(store, &wit).map(|r| r.map(bindings::cost_output)))
            }
            _ => None,
        })
    }

    fn consensus(&self, input: &ConsensusInput, settings: &str) -> Result<ConsensusOutput, PolicyError> {
        self.call(Role::Consensus, |store, instance| match instance {
            WorldInstance::Consensus(c) => {
                let wit = bindings::consensus_input(input, settings);
                Some(c.scalewise_policy_consensus_api().call_evaluate(store, &wit).map(|r| r.map(bindings::consensus_output)))
            }
            _ => None,
        })
    }
}

impl ComponentRuntime {
    /// Call `role`'s evaluate through `call`, on an instance as the engine's
    /// instance mode says.
    fn call<T: Send>(&self, role: Role, call: impl FnOnce(&mut Store<HostState>, &WorldInstance) -> Option<WorldResult<T>> + Send) -> Result<T, PolicyError> {
        // wasmtime-wasi's synchronous bindings block on a tokio runtime of
        // their own, which panics on a thread already inside one (a pool's
        // task). A guest that imports WASI is therefore called from a
        // short-lived thread there. Components built by `scalewise policy
        // build` import no WASI and never pay for this.
        if self.uses_wasi && tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|s| s.spawn(|| self.call_here(role, call)).join().unwrap_or_else(|_| Err(PolicyError::Trap("the policy's call thread panicked".into()))));
        }
        self.call_here(role, call)
    }

    fn call_here<T>(&self, role: Role, call: impl FnOnce(&mut Store<HostState>, &WorldInstance) -> Option<WorldResult<T>>) -> Result<T, PolicyError> {
        match self.mode {
            InstanceMode::Fresh | InstanceMode::Auto { .. } => {
                let (mut store, instance) = self.instantiate()?;
                self.invoke(&mut store, &instance, role, call)
            }
            InstanceMode::Warm { max_calls } => {
                let reused = self.warm.lock().unwrap().pop();
                let mut warm = match reused {
                    Some(mut w) => {
                        arm_deadline(&mut w.store, self.deadline);
                        w
                    }
                    None => {
                        let (store, instance) = self.instantiate()?;
                        Warm { store, instance, calls: 0 }
                    }
                };
                let result = self.invoke(&mut warm.store, &warm.instance, role, call);
                warm.calls += 1;
                // A trap or a timeout may leave the instance half-way through
                // anything: retire it. So does age.
                let faulted = matches!(&result, Err(e) if e.is_fault());
                if !faulted && warm.calls < max_calls {
                    self.warm.lock().unwrap().push(warm);
                }
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_components_from_modules() {
        assert!(matches!(check_header(b"hello world"), Err(LoadError::NotWasm)));
        assert!(matches!(check_header(b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule)));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(matches!(check_header(b"\0as"), Err(LoadError::NotWasm)));
    }

    #[test]
    fn versions_follow_semver_for_0x() {
        assert!(compatible("0.2.0"));
        assert!(compatible("0.2.7"));
        assert!(!compatible("0.1.0"));
        assert!(!compatible("0.3.0"));
        assert!(!compatible("1.0.0"));
        assert!(!compatible(""));
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_name("scalewise:policy/strategy-api@0.2.0"),
            Some(("scalewise:policy", "strategy-api", "0.2.0"))
        );
        assert_eq!(parse_name("run"), None);
    }
}
