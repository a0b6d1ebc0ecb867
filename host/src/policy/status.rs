//! Per-policy counters and latencies, readable at any time without locks on
//! the hot path.
//!
//! Status belongs to a policy id, not to one version: counters go on across
//! hot swaps, while the version fields describe what serves now. A failed
//! load leaves the serving version's fields alone and records the error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::error::PolicyError;

pub use crate::timing::LatencyHistogram;

/// An error with when it happened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorRecord {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub message: String,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The version that serves now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub generation: u64,
    pub digest: String,
    pub role: &'static str,
    pub runtime: &'static str,
    /// `cranelift`, `winch` (serving while Cranelift compiles) or `rhai`.
    pub compiled_by: &'static str,
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub loaded_at_ms: u64,
}

#[derive(Debug, Default)]
struct Descriptive {
    serving: Option<VersionInfo>,
    last_error: Option<ErrorRecord>,
    last_load_error: Option<ErrorRecord>,
    clash: Option<Vec<String>>,
}

/// Everything the host knows about one policy id.
#[derive(Default)]
pub struct PolicyStatus {
    calls: AtomicU64,
    declined: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    memory_cap: AtomicU64,
    invalid_outputs: AtomicU64,
    fallbacks: AtomicU64,
    latency: LatencyHistogram,
    info: Mutex<Descriptive>,
}

/// A point-in-time copy of a [`PolicyStatus`], for the API and the CLI.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusSnapshot {
    pub id: String,
    pub serving: Option<VersionInfo>,
    pub calls: u64,
    /// Calls the policy declined on purpose (the SDK's `no_opinion`).
    pub declined: u64,
    /// Calls the policy answered with an error of its own (no data, bad
    /// input): not a sandbox fault, but not a considered "no opinion" either.
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_cap: u64,
    pub invalid_outputs: u64,
    pub fallbacks: u64,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub last_error: Option<ErrorRecord>,
    pub last_load_error: Option<ErrorRecord>,
    /// Set while several files define this id: none of them is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clash: Option<Vec<String>>,
}

impl PolicyStatus {
    /// Count one finished call and its latency.
    pub fn record_call(&self, elapsed: Duration, result: Result<(), &PolicyError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
        let Err(e) = result else { return };
        let counter = match e {
            PolicyError::Declined(why) if scalewise_sdk::is_no_opinion(why) => &self.declined,
            PolicyError::Declined(_) => &self.errors,
            PolicyError::Trap(_) | PolicyError::Instantiate(_) => &self.traps,
            PolicyError::Timeout(_) => &self.timeouts,
            PolicyError::MemoryCap(_) => &self.memory_cap,
            PolicyError::InvalidOutput(_) | PolicyError::WrongRole { .. } => &self.invalid_outputs,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if e.is_fault() {
            self.info.lock().unwrap().last_error =
                Some(ErrorRecord { at_ms: unix_ms(SystemTime::now()), message: e.to_string() });
        }
    }

    pub fn record_fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_serving(&self, version: Option<VersionInfo>) {
        let mut info = self.info.lock().unwrap();
        info.serving = version;
        info.last_load_error = None;
    }

    /// A better build of the serving version: keeps any newer load error.
    pub fn update_serving(&self, version: VersionInfo) {
        self.info.lock().unwrap().serving = Some(version);
    }

    pub fn record_load_error(&self, message: String) {
        self.info.lock().unwrap().last_load_error =
            Some(ErrorRecord { at_ms: unix_ms(SystemTime::now()), message });
    }

    /// Several files define this id (`Some(files)`), or no longer do.
    /// The clash's load error goes with it.
    pub fn set_clash(&self, files: Option<Vec<String>>) {
        let mut info = self.info.lock().unwrap();
        if files.is_none() && info.clash.is_some() {
            info.last_load_error = None;
        }
        info.clash = files;
    }

    pub fn latency(&self) -> &LatencyHistogram {
        &self.latency
    }

    pub fn snapshot(&self, id: &str) -> StatusSnapshot {
        let info = self.info.lock().unwrap();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatusSnapshot {
            id: id.to_owned(),
            serving: info.serving.clone(),
            calls: load(&self.calls),
            declined: load(&self.declined),
            errors: load(&self.errors),
            traps: load(&self.traps),
            timeouts: load(&self.timeouts),
            memory_cap: load(&self.memory_cap),
            invalid_outputs: load(&self.invalid_outputs),
            fallbacks: load(&self.fallbacks),
            latency_p50_us: self.latency.quantile_micros(0.5),
            latency_p99_us: self.latency.quantile_micros(0.99),
            last_error: info.last_error.clone(),
            last_load_error: info.last_load_error.clone(),
            clash: info.clash.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let h = LatencyHistogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile_micros(0.5).unwrap();
        let p99 = h.quantile_micros(0.99).unwrap();
        assert!((p50 - 50.0).abs() / 50.0 < 0.07, "p50 {p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.07, "p99 {p99}");
        assert_eq!(h.count(), 100);
        assert_eq!(LatencyHistogram::default().quantile_micros(0.5), None);
    }

    #[test]
    fn histogram_clamps_extremes() {
        let h = LatencyHistogram::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(1000));
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn faults_are_counted_and_remembered() {
        let s = PolicyStatus::default();
        s.record_call(Duration::from_micros(3), Ok(()));
        s.record_call(Duration::from_micros(3), Err(&PolicyError::Declined("no data".into())));
        s.record_call(Duration::from_micros(3), Err(&PolicyError::Declined(scalewise_sdk::no_opinion("calm"))));
        s.record_call(Duration::from_millis(10), Err(&PolicyError::Timeout(Duration::from_millis(10))));
        let snap = s.snapshot("p");
        assert_eq!((snap.calls, snap.declined, snap.errors, snap.timeouts), (4, 1, 1, 1), "a no-opinion is a decline, \"no data\" an error");
        assert!(snap.last_error.unwrap().message.contains("10ms deadline"));
    }
}
