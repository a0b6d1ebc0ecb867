//! `scalewise simulate`: what a policy set would have done, before it runs.
//!
//! Operators need to know what a new set of strategies would do to their
//! bill and their latency before they hot-swap it in. This module replays
//! load traces through the host's own control loop (`PoolLoop::tick`, with
//! the same policies, guardrails and, if asked, journal) under a virtual
//! clock, on a simulated fleet, and scores each set against the clairvoyant
//! oracle with the SPEC Research Group's elasticity metrics. It has no
//! decision code of its own: what it measures is what production does.
//!
//! `spec` reads the simulation file, `run` drives it, `report` writes it;
//! `trace`, `fleet`, `source`, `elasticity`, `oracle` and `series` are the
//! parts, each testable alone.

pub mod elasticity;
pub mod fleet;
pub mod oracle;
pub mod prepare;
pub mod replay;
pub mod report;
pub mod run;
pub mod series;
pub mod source;
pub mod spec;
pub mod trace;
