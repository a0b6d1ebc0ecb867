//! The pure decision core: from a pool's capacity, metric windows and
//! memory to a [`DecisionRecord`](record::DecisionRecord) that says what the
//! pool should hold and why.
//!
//! Why a folder of its own: this is the code every clock shares. The live
//! loop, the simulator and the tests all call
//! [`pipeline::decide`], so what one measures is what the others do. To stay
//! shareable it does no I/O and reads no clock (the time is an input), and it
//! reaches policies only through the [`Experts`](pipeline::Experts) trait.
//! Nothing here names tokio, wasmtime, rhai, axum, the filesystem or the
//! journal; `crate::layering` checks that on every test run.
//!
//! - [`pipeline`]: strategies → consensus → cost rules → feasibility →
//!   guardrails, and an operator's change as a decision of its own.
//! - [`guardrails`]: the rules after the policies and what they remember.
//! - [`feasibility`]: a scale-up cut to what the target can hold.
//! - [`budget`]: a pool's cost facts, spend accounting, budget periods and
//!   alerts.
//! - [`inputs`]: what the policies were given, kept compactly in the
//!   record so a decision can be taken again.
//! - [`memory`]: what a pool keeps between ticks ([`PoolMemory`](memory::PoolMemory)).
//! - [`record`]: the nouns of a decision, and the pool's [`Mode`](record::Mode).

pub mod budget;
pub mod feasibility;
pub mod guardrails;
pub mod inputs;
pub mod memory;
pub mod pipeline;
pub mod record;
pub(crate) mod state_text;
