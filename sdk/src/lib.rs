//! # scalewise-sdk: write scalewise policies in Rust
//!
//! A policy is a pure function: it gets everything it needs in its input (the
//! pool, metric windows, recent actions, its settings, the state it returned
//! last time) and returns a proposal plus its new state. No filesystem, no
//! network, no clock: only [`log`].
//!
//! Implement one of [`Strategy`], [`CostRule`] or [`Consensus`], then export
//! it with the matching macro. A whole strategy:
//!
//! ```
//! use scalewise_sdk::prelude::*;
//!
//! #[derive(Deserialize)]
//! pub struct Settings { per_worker: f64 }
//!
//! pub struct QueuePerWorker;
//!
//! impl Strategy for QueuePerWorker {
//!     type Settings = Settings;
//!     type State = ();
//!
//!     fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
//!         let depth = input.metric("queue_depth").and_then(|m| m.last()).ok_or("no queue_depth")?;
//!         let desired = input.pool.clamp((depth / s.per_worker).ceil());
//!         Ok(Proposal::new(desired, 0.9, format!("{depth} queued / {} per worker", s.per_worker)))
//!     }
//! }
//!
//! export_strategy!(QueuePerWorker);
//! ```
//!
//! Build it into a component with `scalewise policy build path/to/crate`.

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings;

/// The allocator of every policy component built with the SDK (see [`alloc`]).
/// Its free lists are for one thread; a guest built with wasm threads gets
/// dlmalloc's own (locking) allocator instead.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses<dlmalloc::GlobalDlmalloc> = alloc::SizeClasses::new(dlmalloc::GlobalDlmalloc);
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
#[doc(hidden)]
pub mod alloc;
mod export;
pub mod gauge;
pub mod log;
pub mod number;
mod roles;
pub mod series;
pub mod state;
pub mod types;

pub use roles::{
    Combined, Consensus, CostDecision, CostRule, NO_OPINION, Strategy, is_no_opinion, no_opinion, parse_settings, run_consensus,
    run_cost_rule, run_strategy, validate_consensus, validate_cost_rule, validate_strategy,
};
pub use types::*;

/// Everything a policy usually needs, in one `use`.
pub mod prelude {
    pub use crate::number::{fixed, num};
    pub use crate::{gauge, log};
    pub use crate::roles::{Combined, Consensus, CostDecision, CostRule, Strategy, no_opinion};
    pub use crate::series::{self, Trend};
    pub use crate::state::StateEncoding;
    pub use crate::types::*;
    pub use crate::{export_consensus, export_cost_rule, export_strategy};
    pub use serde::{Deserialize, Serialize};
}
