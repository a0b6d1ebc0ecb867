//! Targets that add or remove capacity, and sources of metrics.
//!
//! The host drives infrastructure through two small interfaces, split the way
//! Nomad Autoscaler splits them: a [`Target`] reads and changes a pool's
//! capacity, a [`MetricSource`] answers queries for named series over a
//! window. This crate knows nothing of policies or of the journal, so an
//! adapter can be tested on its own against the real thing it talks to.
//!
//! Adapters: [`local`] (a pool of worker processes on this machine, the
//! embedded default) and the metric sources [`host`] (/proc), [`prometheus`]
//! (PromQL over HTTP), [`push`] (samples posted to the host), [`replay`]
//! (a CSV trace) and [`nvml`] (NVIDIA GPUs); the targets [`kubernetes`]
//! (a workload's scale subresource) and [`aws`] (EC2 instances). [`leader`]
//! is the gate that lets only one host replica act.

pub mod aws;
pub mod host;
pub mod kubernetes;
pub mod leader;
pub mod local;
pub mod metrics;
pub mod nvml;
pub mod pool;
pub mod prometheus;
pub mod push;
pub mod replay;
pub mod target;

pub use metrics::{MetricError, MetricSource, SourceStatus, Window};
pub use scalewise_sdk::{MetricWindow, Sample};
pub use target::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
