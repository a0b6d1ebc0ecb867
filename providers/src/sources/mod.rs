//! What a metric source is: something that answers "this series, over this
//! window" with timestamped samples; and the sources: [`proc`] (this
//! machine's /proc), [`members`] (what a target reports of its members),
//! [`push`] (samples posted to the host), [`prometheus`] (PromQL over HTTP),
//! [`replay`] (a CSV trace) and [`nvml`] (NVIDIA GPUs).
//!
//! A query is the source's own language (a PromQL expression, a /proc
//! reading's name, a pushed series' name, a trace column); the host does not
//! interpret it. A source that is down or answers garbage returns an error
//! that names the source and the query; the control loop records it and the
//! strategies that needed the series see it missing, which every built-in
//! strategy handles.

pub mod members;
pub mod nvml;
pub mod proc;
pub mod prometheus;
pub mod push;
pub mod replay;

use async_trait::async_trait;

use crate::Sample;

/// The span a query covers: `[end - length, end]`, ms since the epoch, with
/// the resolution a range query should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub end: i64,
    pub length_ms: i64,
    pub step_ms: i64,
}

impl Window {
    pub fn start(&self) -> i64 {
        self.end - self.length_ms
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum MetricError {
    #[error("metric source `{source_kind}` is unreachable: {detail}")]
    Unreachable { source_kind: &'static str, detail: String },
    #[error("metric source `{source_kind}` answered something unreadable for `{query}`: {detail}")]
    Garbage { source_kind: &'static str, query: String, detail: String },
    #[error("metric source `{source_kind}` has no series `{query}`{hint}")]
    Unknown { source_kind: &'static str, query: String, hint: String },
}

/// Whether a source can answer, as far as it knows.
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum SourceStatus {
    /// The source does not track it, or has not been asked yet.
    Unknown,
    /// Answering; the detail says what it sees.
    Up(String),
    /// Cannot answer, and why ("NVML not available: ...").
    Unavailable(String),
}

/// A source of named series.
#[async_trait]
pub trait MetricSource: Send + Sync {
    fn kind(&self) -> &'static str;

    /// The samples of `query` inside `window`, oldest first. Non-finite
    /// values are dropped by the source, never passed on.
    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError>;

    /// Whether the source answers, for the API and `/metrics`.
    fn status(&self) -> SourceStatus {
        SourceStatus::Unknown
    }
}

/// Keep finite samples inside the window, oldest first.
pub fn tidy(mut samples: Vec<Sample>, window: Window) -> Vec<Sample> {
    samples.retain(|s| s.value.is_finite() && s.at >= window.start() && s.at <= window.end);
    samples.sort_by_key(|s| s.at);
    samples
}
