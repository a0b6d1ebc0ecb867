//! Targets that add or remove capacity, and sources of metrics.
//!
//! The host drives infrastructure through two small interfaces, split the way
//! Nomad Autoscaler splits them: a [`Target`] reads and changes a pool's
//! capacity, a [`MetricSource`] answers queries for named series over a
//! window. This crate knows nothing of policies or of the journal, so an
//! adapter can be tested on its own against the real thing it talks to.
//!
//! Three folders, each a kind: [`targets`] (`local`, the embedded default:
//! worker processes on this machine; `aws`: EC2 instances; `kubernetes`: a
//! workload's scale subresource), [`sources`] (`proc`, `members`, `push`,
//! `prometheus`, `replay`, `nvml`), [`leader`], the gate that lets only
//! one host replica act, with its Kubernetes Lease elector, and
//! [`advisors`] (`chat`: a language model behind an OpenAI-compatible
//! endpoint). [`http`] is how the outside HTTP services are reached, and [`file`]
//! how a file the host does not control is read.

pub mod advisors;
pub mod file;
pub mod http;
pub mod leader;
pub mod sources;
pub mod targets;

pub use scalewise_sdk::{MetricWindow, Sample};
pub use sources::{MetricError, MetricSource, SourceStatus, Window};
pub use targets::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, TargetEvent, TargetEventKind, pick_victims};

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An error and its sources in one line. A client's own message ("error
/// sending request") says nothing of why (refused, timed out, reset) until
/// its sources are read.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
