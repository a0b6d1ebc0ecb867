//! The control loop: one task per pool that ticks, collects metric windows,
//! decides through the [`pipeline`], passes the [`guardrails`], acts through
//! the provider's target, and writes everything to the journal.
//!
//! This module sees policies only through [`pipeline::Experts`] and
//! infrastructure only through the provider traits; [`experts`] adapts the
//! policy registry to the former.

pub mod budget;
pub mod clock;
pub mod experts;
pub mod feasibility;
pub mod guardrails;
pub mod pipeline;
pub mod pool;
pub mod record;
mod state_text;

pub use pool::{LagOf, PoolCommand, PoolHandle, PoolSnapshot};
