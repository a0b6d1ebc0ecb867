//! The control loop: one task per pool that ticks, collects metric windows,
//! decides through [`crate::decide`], acts through the provider's target,
//! and writes everything to the journal.
//!
//! Why this folder holds only what waits or talks to the outside: the
//! decision itself is pure and lives in [`crate::decide`], so the live loop,
//! the simulator and the tests share it. Here are the loop ([`pool`]), what
//! the API holds of a running pool ([`handle`]), the clocks that drive it
//! ([`clock`]), [`experts`], which adapts the policy registry to the
//! pipeline's [`Experts`](crate::decide::pipeline::Experts) trait, and
//! [`advisor`], a language model asked off the tick path.

pub mod advisor;
pub mod clock;
pub mod experts;
pub mod handle;
pub mod pool;

pub use handle::{LagOf, PoolCommand, PoolHandle, PoolSnapshot};
