//! rhai policies: small scripts that play any role, in the same sandbox terms.
//!
//! A script defines one of `fn strategy(input)`, `fn cost_rule(input)` or
//! `fn consensus(input)`, and optionally `fn validate_config(settings)` (which
//! rejects settings by `throw`ing). The input is the role's input as a map,
//! with `settings` already parsed and `state` as the value the script returned
//! last time; the script returns a map (`#{desired: 3, reason: "..."}` for a
//! strategy) and `throw`s to decline.
//!
//! The sandbox: the engine has no module loader, no `eval`, no clock; every
//! script runs under an operation budget, expression-depth, call-depth,
//! string, array and map limits, and the same deadline as components (with
//! the same grace period for preempted calls), checked every few hundred
//! operations.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Scope};
use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, Gauge, Placement, Proposal, StrategyInput, StrategyOutput, Verdict};
use serde::Serialize;
use serde_json::Value;

use super::deadline::Overrun;
use super::engine::SandboxOptions;
use super::error::{LoadError, PolicyError};
use super::role::{Role, Runtime};

thread_local! {
    /// The wall-clock deadline of the call running on this thread, and its
    /// grace-period bookkeeping (see `deadline.rs`).
    static DEADLINE: RefCell<Option<(Instant, Overrun)>> = const { RefCell::new(None) };
}

const MAX_OPERATIONS: u64 = 5_000_000;

pub(crate) struct RhaiRuntime {
    engine: Engine,
    ast: AST,
    role: Role,
    entry: &'static str,
    has_validate: bool,
    deadline: Duration,
}

fn sandboxed_engine(policy: &str) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_expr_depths(64, 32)
        .set_max_call_levels(32)
        .set_max_string_size(64 * 1024)
        .set_max_array_size(100_000)
        .set_max_map_size(10_000)
        .disable_symbol("eval");
    engine.on_progress(|ops| {
        if ops % 256 != 0 {
            return None;
        }
        DEADLINE.with_borrow_mut(|d| {
            let (wall, overrun) = d.as_mut()?;
            (Instant::now() > *wall && overrun.should_stop()).then(|| Dynamic::from("deadline"))
        })
    });
    let id = policy.to_owned();
    engine.on_print(move |s| tracing::info!(policy = %id, "{s}"));
    let id = policy.to_owned();
    engine.on_debug(move |s, _, pos| tracing::debug!(policy = %id, %pos, "{s}"));
    engine
}

impl RhaiRuntime {
    pub(crate) fn load(options: &SandboxOptions, id: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        let text = std::str::from_utf8(bytes).map_err(|e| LoadError::RhaiSyntax(format!("not UTF-8: {e}")))?;
        let engine = sandboxed_engine(id);
        let ast = engine.compile(text).map_err(|e| LoadError::RhaiSyntax(e.to_string()))?;
        let names: Vec<(String, usize)> =
            ast.iter_functions().map(|f| (f.name.to_string(), f.params.len())).collect();
        let defines = |n: &str| names.iter().any(|(name, arity)| name == n && *arity == 1);
        let roles: Vec<(Role, &'static str)> = [
            (Role::Strategy, "strategy"),
            (Role::CostRule, "cost_rule"),
            (Role::Consensus, "consensus"),
        ]
        .into_iter()
        .filter(|(_, f)| defines(f))
        .collect();
        let (role, entry) = match roles.as_slice() {
            [one] => *one,
            [] => return Err(LoadError::RhaiRole("it defines none".into())),
            many => {
                let list: Vec<&str> = many.iter().map(|(_, f)| *f).collect();
                return Err(LoadError::RhaiRole(format!("it defines {}", list.join(" and "))));
            }
        };
        Ok(Self { has_validate: defines("validate_config"), engine, ast, role, entry, deadline: options.deadline_for(id) })
    }

    fn run(&self, function: &str, arg: Dynamic) -> Result<Dynamic, PolicyError> {
        DEADLINE.set(Some((Instant::now() + self.deadline, Overrun::new(self.deadline))));
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result = self.engine.call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &self.ast, function, (arg,));
        DEADLINE.set(None);
        result.map_err(|e| self.classify(*e))
    }

    fn classify(&self, err: EvalAltResult) -> PolicyError {
        match err {
            EvalAltResult::ErrorTerminated(..) | EvalAltResult::ErrorTooManyOperations(..) => {
                PolicyError::Timeout(self.deadline)
            }
            EvalAltResult::ErrorRuntime(value, _) => PolicyError::Declined(value.to_string()),
            other => PolicyError::Trap(other.to_string()),
        }
    }
}

fn json_or_null(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Serialise an input to a rhai map, with settings and state as values.
fn script_input(input: &impl Serialize, state: Option<&[u8]>, settings: &str) -> Result<Dynamic, PolicyError> {
    let mut value = serde_json::to_value(input);
    let value = value.as_mut().map_err(|e| PolicyError::Instantiate(e.to_string()))?;
    value["settings"] = json_or_null(settings.as_bytes());
    value["state"] = state.map(json_or_null).unwrap_or(Value::Null);
    rhai::serde::to_dynamic(&*value).map_err(|e| PolicyError::Instantiate(e.to_string()))
}

fn invalid(msg: impl Into<String>) -> PolicyError {
    PolicyError::InvalidOutput(msg.into())
}

fn number(map: &Value, key: &str, default: Option<f64>) -> Result<f64, PolicyError> {
    match map.get(key) {
        Some(v) => v.as_f64().ok_or_else(|| invalid(format!("`{key}` must be a number, got {v}"))),
        None => default.ok_or_else(|| invalid(format!("the returned map has no `{key}`"))),
    }
}

fn text(map: &Value, key: &str) -> String {
    match map.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn state(map: &Value) -> Option<Vec<u8>> {
    map.get("state").filter(|v| !v.is_null()).map(|v| v.to_string().into_bytes())
}

/// `gauges: #{ name: number, ... }` in a strategy script's answer.
fn gauges(map: &Value) -> Result<Vec<Gauge>, PolicyError> {
    let Some(g) = map.get("gauges").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Some(obj) = g.as_object() else { return Err(invalid("`gauges` must be a map of names to numbers")) };
    obj.iter()
        .map(|(name, v)| match v.as_f64() {
            Some(value) => Ok(Gauge { name: name.clone(), value }),
            None => Err(invalid(format!("gauge `{name}` must be a number, got {v}"))),
        })
        .collect()
}

/// `placement: #{ kind: "m5.large", on_demand: 2, spot: 6 }` in a cost
/// rule script's answer.
fn placement(map: &Value) -> Result<Option<Placement>, PolicyError> {
    let Some(p) = map.get("placement").filter(|v| !v.is_null()) else { return Ok(None) };
    let members = |field: &str| -> Result<u32, PolicyError> {
        let n = number(p, field, Some(0.0))?;
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) {
            Ok(n as u32)
        } else {
            Err(invalid(format!("`placement.{field}` must be a whole number of members, got {n}")))
        }
    };
    let kind = p.get("kind").and_then(Value::as_str).map(str::to_owned);
    Ok(Some(Placement { kind, on_demand: members("on_demand")?, spot: members("spot")? }))
}

/// A script's answer as JSON: it must be a map.
fn script_output(role: Role, result: Dynamic) -> Result<Value, PolicyError> {
    let type_name = result.type_name();
    let map: Value = rhai::serde::from_dynamic(&result).map_err(|e| invalid(e.to_string()))?;
    if !map.is_object() {
        return Err(invalid(format!("a {role} script must return a map, got {type_name}")));
    }
    Ok(map)
}

fn strategy_output(map: &Value) -> Result<StrategyOutput, PolicyError> {
    Ok(StrategyOutput {
        proposal: Proposal::new(number(map, "desired", None)?, number(map, "confidence", Some(1.0))?, text(map, "reason")),
        gauges: gauges(map)?,
        state: state(map),
    })
}

fn cost_output(map: &Value) -> Result<CostOutput, PolicyError> {
    let verdict = match map.get("verdict").and_then(Value::as_str) {
        Some("allow") | None => Verdict::Allow,
        Some("deny") => Verdict::Deny,
        Some("clamp") => {
            let n = number(map, "clamp", None)?;
            if !(n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX)) {
                return Err(invalid(format!("`clamp` must be a whole number of members, got {n}")));
            }
            Verdict::Clamp(n as u32)
        }
        Some(other) => return Err(invalid(format!("`verdict` must be allow, clamp or deny, got {other}"))),
    };
    Ok(CostOutput {
        verdict,
        cost_per_hour: number(map, "cost_per_hour", Some(0.0))?,
        reason: text(map, "reason"),
        placement: placement(map)?,
        state: state(map),
    })
}

fn consensus_output(map: &Value) -> Result<ConsensusOutput, PolicyError> {
    Ok(ConsensusOutput {
        desired: number(map, "desired", None)?,
        confidence: number(map, "confidence", Some(1.0))?,
        explanation: text(map, "explanation"),
        state: state(map),
    })
}

impl RhaiRuntime {
    /// Run the script's role function on `input` and read its answer.
    fn call<T>(&self, role: Role, input: &impl Serialize, state: Option<&[u8]>, settings: &str, read: fn(&Value) -> Result<T, PolicyError>) -> Result<T, PolicyError> {
        if role != self.role {
            return Err(PolicyError::WrongRole { expected: role.as_str(), actual: self.role.as_str() });
        }
        let arg = script_input(input, state, settings)?;
        let result = self.run(self.entry, arg)?;
        read(&script_output(self.role, result)?)
    }
}

impl Runtime for RhaiRuntime {
    fn role(&self) -> Role {
        self.role
    }

    fn kind(&self) -> &'static str {
        "rhai"
    }

    fn validate_config(&self, settings: &str) -> Result<Result<(), String>, PolicyError> {
        let parsed: Value = match serde_json::from_str(if settings.trim().is_empty() { "{}" } else { settings }) {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("invalid settings: {e}"))),
        };
        if !self.has_validate {
            return Ok(Ok(()));
        }
        let arg = rhai::serde::to_dynamic(&parsed).map_err(|e| PolicyError::Instantiate(e.to_string()))?;
        match self.run("validate_config", arg) {
            Ok(_) => Ok(Ok(())),
            Err(PolicyError::Declined(msg)) => Ok(Err(msg)),
            Err(fault) => Err(fault),
        }
    }

    fn strategy(&self, input: &StrategyInput, settings: &str) -> Result<StrategyOutput, PolicyError> {
        self.call(Role::Strategy, input, input.state.as_deref(), settings, strategy_output)
    }

    fn cost_rule(&self, input: &CostInput, settings: &str) -> Result<CostOutput, PolicyError> {
        self.call(Role::CostRule, input, input.state.as_deref(), settings, cost_output)
    }

    fn consensus(&self, input: &ConsensusInput, settings: &str) -> Result<ConsensusOutput, PolicyError> {
        self.call(Role::Consensus, input, input.state.as_deref(), settings, consensus_output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SmokeInputs;

    fn load(script: &str) -> Result<RhaiRuntime, LoadError> {
        RhaiRuntime::load(&SandboxOptions::default(), "t", script.as_bytes())
    }

    #[test]
    fn a_strategy_script_runs_with_settings_and_state() {
        let rt = load(
            r#"fn strategy(input) {
                 let n = if input.state == () { 0 } else { input.state.n };
                 #{ desired: input.pool.running + input.settings.step, reason: `call ${n}`, state: #{ n: n + 1 } }
               }"#,
        )
        .unwrap();
        let inputs = SmokeInputs::new();
        let out = rt.strategy(&inputs.strategy, r#"{"step": 3}"#).unwrap();
        assert_eq!(out.proposal.desired, 5.0);
        assert_eq!(out.proposal.reason, "call 0");
        assert_eq!(out.state.as_deref(), Some(&br#"{"n":1}"#[..]));
    }

    #[test]
    fn role_must_be_unambiguous() {
        assert!(matches!(load("fn other(x) { 1 }"), Err(LoadError::RhaiRole(_))));
        let err = load("fn strategy(x) { 1 } fn consensus(x) { 1 }").err().unwrap().to_string();
        assert!(err.contains("strategy and consensus"), "{err}");
        assert!(matches!(load("fn strategy(x) { "), Err(LoadError::RhaiSyntax(_))));
    }

    #[test]
    fn endless_loops_time_out() {
        let rt = load("fn strategy(input) { loop { } }").unwrap();
        let inputs = SmokeInputs::new();
        let started = Instant::now();
        let err = rt.strategy(&inputs.strategy, "{}").unwrap_err();
        assert!(matches!(err, PolicyError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_policys_own_deadline_applies_to_scripts_too() {
        let mut options = SandboxOptions::default();
        let limits = super::super::PolicyLimits { deadline: Some(Duration::from_millis(30)), instance_mode: None };
        options.per_policy.insert("slow".into(), limits);
        let rt = RhaiRuntime::load(&options, "slow", b"fn strategy(input) { loop { } }").unwrap();
        let err = rt.strategy(&SmokeInputs::new().strategy, "{}").unwrap_err();
        assert!(matches!(err, PolicyError::Timeout(d) if d == Duration::from_millis(30)), "{err}");
        let other = RhaiRuntime::load(&options, "other", b"fn strategy(input) { loop { } }").unwrap();
        assert!(matches!(other.strategy(&SmokeInputs::new().strategy, "{}").unwrap_err(), PolicyError::Timeout(d) if d == options.deadline));
    }

    #[test]
    fn throw_declines_and_bad_output_is_invalid() {
        let inputs = SmokeInputs::new();
        let rt = load(r#"fn strategy(input) { throw "no data" }"#).unwrap();
        let err = rt.strategy(&inputs.strategy, "{}").unwrap_err();
        assert_eq!(err, PolicyError::Declined("no data".into()));
        let rt = load("fn strategy(input) { 42 }").unwrap();
        let err = rt.strategy(&inputs.strategy, "{}").unwrap_err();
        assert!(err.to_string().contains("must return a map"), "{err}");
    }

    #[test]
    fn no_clock_no_eval() {
        assert!(load("fn strategy(input) { #{desired: timestamp()} }").is_ok_and(|rt| {
            let inputs = SmokeInputs::new();
            rt.strategy(&inputs.strategy, "{}").is_err()
        }));
        assert!(load(r#"fn strategy(input) { eval("1") }"#).is_err());
    }
}
