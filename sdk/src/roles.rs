//! The three roles a policy can play, as traits, and the glue that runs them.
//!
//! A policy author implements one trait with typed settings and typed state;
//! the `run_*` functions do the untyped part the same way on every target:
//! parse the settings JSON (a clear error naming the bad field), decode the
//! state the host kept from the last call (falling back to the default when it
//! is absent or from an incompatible older version), call the policy, and
//! encode the new state. The wasm export macros call these functions, and so
//! do native tests and benchmarks, which is why native and wasm agree.

use std::any::Any;
use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::StateEncoding;
use crate::types::{
    ConsensusInput, ConsensusOutput, CostInput, CostOutput, Placement, Proposal, StrategyInput,
    StrategyOutput, Verdict,
};

/// A scaling strategy: proposes a capacity for a pool.
pub trait Strategy {
    /// The policy's settings, parsed from the JSON the host passes.
    type Settings: DeserializeOwned + 'static;
    /// What the policy remembers between calls. The host persists it.
    type State: Serialize + DeserializeOwned + Default;
    /// How the state travels: JSON (readable in the journal; the default)
    /// or [`StateEncoding::Binary`] for a state of thousands of numbers.
    const STATE_ENCODING: StateEncoding = StateEncoding::Json;

    /// Extra checks beyond what deserialising the settings already checks.
    fn validate(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(
        input: &StrategyInput,
        settings: &Self::Settings,
        state: &mut Self::State,
    ) -> Result<Proposal, String>;
}

/// What a cost rule returns, before the glue attaches its state.
#[derive(Debug, Clone, PartialEq)]
pub struct CostDecision {
    pub verdict: Verdict,
    pub cost_per_hour: f64,
    pub reason: String,
    /// How to buy the capacity; `None` keeps the previous rule's choice.
    pub placement: Option<Placement>,
}

impl CostDecision {
    /// A verdict with no opinion on how the capacity is bought.
    pub fn new(verdict: Verdict, cost_per_hour: f64, reason: impl Into<String>) -> Self {
        Self { verdict, cost_per_hour, reason: reason.into(), placement: None }
    }
}

/// A cost rule: allows, clamps or denies a proposed capacity.
pub trait CostRule {
    type Settings: DeserializeOwned + 'static;
    type State: Serialize + DeserializeOwned + Default;
    /// How the state travels: JSON (readable in the journal; the default)
    /// or [`StateEncoding::Binary`] for a state of thousands of numbers.
    const STATE_ENCODING: StateEncoding = StateEncoding::Json;

    fn validate(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(
        input: &CostInput,
        settings: &Self::Settings,
        state: &mut Self::State,
    ) -> Result<CostDecision, String>;
}

/// What consensus returns, before the glue attaches its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    pub desired: f64,
    pub confidence: f64,
    pub explanation: String,
}

/// Consensus: combines every expert's vote into one decision.
pub trait Consensus {
    type Settings: DeserializeOwned + 'static;
    type State: Serialize + DeserializeOwned + Default;
    /// How the state travels: JSON (readable in the journal; the default)
    /// or [`StateEncoding::Binary`] for a state of thousands of numbers.
    const STATE_ENCODING: StateEncoding = StateEncoding::Json;

    fn validate(_settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(
        input: &ConsensusInput,
        settings: &Self::Settings,
        state: &mut Self::State,
    ) -> Result<Combined, String>;
}

/// How an error from `evaluate` says the policy has no opinion (rather than
/// that it could not answer). See [`no_opinion`].
pub const NO_OPINION: &str = "no opinion: ";

/// The error a strategy returns to abstain on purpose: it has nothing to
/// say at this point (a rule for high load, at calm load). The host leaves
/// the vote out of the consensus as for any error, but counts it as a
/// decline, not a fault, in the decision, the reports and the API. Any
/// other error (no samples of a metric, bad input) counts as a failure to
/// answer.
///
/// ```
/// # use scalewise_sdk::{is_no_opinion, no_opinion};
/// let e = no_opinion("utilization 0.42 is NORMAL; no step at NORMAL");
/// assert!(is_no_opinion(&e));
/// ```
pub fn no_opinion(reason: impl std::fmt::Display) -> String {
    format!("{NO_OPINION}{reason}")
}

/// Whether an error text is a [`no_opinion`].
pub fn is_no_opinion(error: &str) -> bool {
    error.starts_with(NO_OPINION)
}

/// Parse settings JSON into the policy's own struct.
///
/// An empty string counts as `{}`, so a policy whose settings all have
/// defaults needs no configuration at all.
pub fn parse_settings<T: DeserializeOwned>(settings: &str) -> Result<T, String> {
    let text = if settings.trim().is_empty() { "{}" } else { settings };
    // With the path to the field that is wrong: `metrics[0].target: ...`.
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string().as_str() {
        "." => format!("invalid settings: {}", e.inner()),
        path => format!("invalid settings: {path}: {}", e.inner()),
    })?;
    de.end().map_err(|e| format!("invalid settings: {e}"))?;
    Ok(parsed)
}

thread_local! {
    /// The last settings text and what it parsed to. A reused instance is
    /// called with the same settings every time; parsing them once instead
    /// of per call is most of a small policy's own work.
    static SETTINGS: RefCell<Option<(String, Box<dyn Any>)>> = const { RefCell::new(None) };
}

/// Run `f` with `text` parsed as `T`, parsing only when the text changed.
///
/// The entry is taken out of the cache for the duration of `f` and put back
/// afterwards, so a policy that runs another policy inside (with other
/// settings) only costs a re-parse, never a dangling reference.
fn with_settings<T: DeserializeOwned + 'static, R>(
    text: &str,
    f: impl FnOnce(&T) -> Result<R, String>,
) -> Result<R, String> {
    let hit = SETTINGS.with_borrow_mut(|cache| match cache.take() {
        Some((t, parsed)) if same_text(&t, text) => parsed.downcast::<T>().ok().map(|p| (t, p)),
        other => {
            *cache = other;
            None
        }
    });
    let (key, parsed) = match hit {
        Some(entry) => entry,
        None => (text.to_owned(), Box::new(parse_settings::<T>(text)?)),
    };
    let result = f(&parsed);
    SETTINGS.with_borrow_mut(|cache| *cache = Some((key, parsed)));
    result
}

/// `a == b`, eight bytes at a time. In a wasm guest, `==` on strings is a
/// `memcmp` that compares byte by byte, and the settings text (often over a
/// hundred bytes) is compared on every call.
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_match = wa.remainder() == wb.remainder();
    tails_match && wa.zip(wb).all(|(x, y)| u64::from_ne_bytes(x.try_into().unwrap()) == u64::from_ne_bytes(y.try_into().unwrap()))
}

fn decode_state<T: DeserializeOwned + Default>(state: Option<&[u8]>) -> T {
    crate::state::decode(state).unwrap_or_default()
}

/// `validate-config` for a strategy.
pub fn validate_strategy<S: Strategy>(settings: &str) -> Result<(), String> {
    S::validate(&parse_settings::<S::Settings>(settings)?)
}

/// `evaluate` for a strategy.
pub fn run_strategy<S: Strategy>(input: &StrategyInput) -> Result<StrategyOutput, String> {
    with_settings(&input.settings, |settings: &S::Settings| {
        let mut state = decode_state::<S::State>(input.state.as_deref());
        crate::gauge::take();
        let proposal = S::evaluate(input, settings, &mut state)?;
        Ok(StrategyOutput { proposal, gauges: crate::gauge::take(), state: crate::state::encode(&state, S::STATE_ENCODING)? })
    })
}

/// `validate-config` for a cost rule.
pub fn validate_cost_rule<C: CostRule>(settings: &str) -> Result<(), String> {
    C::validate(&parse_settings::<C::Settings>(settings)?)
}

/// `evaluate` for a cost rule.
pub fn run_cost_rule<C: CostRule>(input: &CostInput) -> Result<CostOutput, String> {
    with_settings(&input.settings, |settings: &C::Settings| {
        let mut state = decode_state::<C::State>(input.state.as_deref());
        let d = C::evaluate(input, settings, &mut state)?;
        Ok(CostOutput {
            verdict: d.verdict,
            cost_per_hour: d.cost_per_hour,
            reason: d.reason,
            placement: d.placement,
            state: crate::state::encode(&state, C::STATE_ENCODING)?,
        })
    })
}

/// `validate-config` for consensus.
pub fn validate_consensus<C: Consensus>(settings: &str) -> Result<(), String> {
    C::validate(&parse_settings::<C::Settings>(settings)?)
}

/// `evaluate` for consensus.
pub fn run_consensus<C: Consensus>(input: &ConsensusInput) -> Result<ConsensusOutput, String> {
    with_settings(&input.settings, |settings: &C::Settings| {
        let mut state = decode_state::<C::State>(input.state.as_deref());
        let c = C::evaluate(input, settings, &mut state)?;
        Ok(ConsensusOutput {
            desired: c.desired,
            confidence: c.confidence,
            explanation: c.explanation,
            state: crate::state::encode(&state, C::STATE_ENCODING)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Pool;
    use serde::Deserialize;

    #[test]
    fn same_text_is_string_equality() {
        let base = "{\"metric\":\"cpu\",\"threshold\":0.5}";
        assert!(same_text(base, base));
        assert!(same_text("", ""));
        for cut in 0..base.len() {
            assert!(!same_text(base, &base[..cut]));
        }
        for i in 0..base.len() {
            let mut other = base.as_bytes().to_vec();
            other[i] ^= 1;
            assert!(!same_text(base, std::str::from_utf8(&other).unwrap()), "byte {i}");
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        target: f64,
    }

    #[derive(Default, Serialize, Deserialize)]
    struct Count {
        calls: u32,
    }

    struct Counter;
    impl Strategy for Counter {
        type Settings = Settings;
        type State = Count;
        fn validate(s: &Settings) -> Result<(), String> {
            if s.target <= 0.0 { Err("target must be > 0".into()) } else { Ok(()) }
        }
        fn evaluate(i: &StrategyInput, s: &Settings, st: &mut Count) -> Result<Proposal, String> {
            st.calls += 1;
            Ok(Proposal::new(s.target, 1.0, format!("call {} on {}", st.calls, i.pool.id)))
        }
    }

    fn input(settings: &str, state: Option<Vec<u8>>) -> StrategyInput {
        StrategyInput {
            pool: Pool { id: "p".into(), running: 1, booting: 0, min: 0, max: 10 },
            settings: settings.into(),
            state,
            ..Default::default()
        }
    }

    #[test]
    fn settings_errors_name_the_field() {
        let err = validate_strategy::<Counter>("{}").unwrap_err();
        assert!(err.contains("missing field `target`"), "{err}");
        let err = validate_strategy::<Counter>(r#"{"target": 1, "tagret": 2}"#).unwrap_err();
        assert!(err.contains("unknown field `tagret`"), "{err}");
        let err = validate_strategy::<Counter>(r#"{"target": -1}"#).unwrap_err();
        assert_eq!(err, "target must be > 0");
        assert!(validate_strategy::<Counter>(r#"{"target": 3}"#).is_ok());
    }

    #[test]
    fn state_round_trips_and_survives_garbage() {
        let out = run_strategy::<Counter>(&input(r#"{"target": 3}"#, None)).unwrap();
        assert_eq!(out.proposal.reason, "call 1 on p");
        let out = run_strategy::<Counter>(&input(r#"{"target": 3}"#, out.state)).unwrap();
        assert_eq!(out.proposal.reason, "call 2 on p");
        // State from some incompatible older version resets instead of failing.
        let out = run_strategy::<Counter>(&input(r#"{"target": 3}"#, Some(b"\x00garbage".to_vec())))
            .unwrap();
        assert_eq!(out.proposal.reason, "call 1 on p");
    }

    #[test]
    fn cached_settings_follow_the_text() {
        let out = run_strategy::<Counter>(&input(r#"{"target": 3}"#, None)).unwrap();
        assert_eq!(out.proposal.desired, 3.0);
        let out = run_strategy::<Counter>(&input(r#"{"target": 3}"#, None)).unwrap();
        assert_eq!(out.proposal.desired, 3.0);
        let out = run_strategy::<Counter>(&input(r#"{"target": 5}"#, None)).unwrap();
        assert_eq!(out.proposal.desired, 5.0, "new settings text, new settings");
        assert!(run_strategy::<Counter>(&input(r#"{"target": "x"}"#, None)).is_err());
        assert_eq!(run_strategy::<Counter>(&input(r#"{"target": 5}"#, None)).unwrap().proposal.desired, 5.0);
    }

    #[test]
    fn unit_state_stores_nothing() {
        assert_eq!(crate::state::encode(&(), StateEncoding::Json).unwrap(), None);
    }
}
