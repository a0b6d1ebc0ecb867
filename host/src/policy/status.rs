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

/// A lock-free latency histogram: log-linear buckets, 8 per power of two,
/// from 16 ns to about 17 s. Percentiles are read as bucket midpoints, which
/// is within 6% of the true value.
pub struct LatencyHistogram {
    buckets: Vec<AtomicU64>,
}

const SUB_BUCKETS: u32 = 8;
const MIN_POW: u32 = 4; // 16 ns
const MAX_POW: u32 = 34; // ~17 s

impl Default for LatencyHistogram {
    fn default() -> Self {
        let n = ((MAX_POW - MIN_POW + 1) * SUB_BUCKETS) as usize;
        Self { buckets: (0..n).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl LatencyHistogram {
    fn index(nanos: u64) -> usize {
        let nanos = nanos.clamp(1 << MIN_POW, (1u64 << (MAX_POW + 1)) - 1);
        let pow = 63 - nanos.leading_zeros();
        let sub = (nanos >> (pow - 3)) & (SUB_BUCKETS as u64 - 1);
        ((pow - MIN_POW) * SUB_BUCKETS) as usize + sub as usize
    }

    fn midpoint(index: usize) -> f64 {
        let pow = index as u32 / SUB_BUCKETS + MIN_POW;
        let sub = (index as u32 % SUB_BUCKETS) as f64;
        let base = (1u64 << pow) as f64;
        let width = base / SUB_BUCKETS as f64;
        base + width * (sub + 0.5)
    }

    pub fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::index(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// For a Prometheus histogram: cumulative counts at each bound (seconds),
    /// the total count, and the sum in seconds (from bucket midpoints).
    pub fn cumulative(&self, bounds_secs: &[f64]) -> (Vec<u64>, u64, f64) {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let upper = |i: usize| (Self::midpoint(i) + (1u64 << (i as u32 / SUB_BUCKETS + MIN_POW)) as f64 / SUB_BUCKETS as f64 / 2.0) / 1e9;
        let cumulative = bounds_secs
            .iter()
            .map(|b| counts.iter().enumerate().filter(|(i, _)| upper(*i) <= *b).map(|(_, c)| c).sum())
            .collect();
        let sum = counts.iter().enumerate().map(|(i, c)| *c as f64 * Self::midpoint(i) / 1e9).sum();
        (cumulative, counts.iter().sum(), sum)
    }

    /// The `q`-quantile (0..=1) in microseconds, or `None` before any sample.
    pub fn quantile_micros(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::midpoint(i) / 1000.0);
            }
        }
        None
    }
}

/// An error with when it happened.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
}

/// Everything the host knows about one policy id.
#[derive(Default)]
pub struct PolicyStatus {
    calls: AtomicU64,
    declined: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    memory_cap: AtomicU64,
    invalid_outputs: AtomicU64,
    fallbacks: AtomicU64,
    latency: LatencyHistogram,
    info: Mutex<Descriptive>,
}

/// A point-in-time copy of a [`PolicyStatus`], for the API and the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    pub id: String,
    pub serving: Option<VersionInfo>,
    pub calls: u64,
    pub declined: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_cap: u64,
    pub invalid_outputs: u64,
    pub fallbacks: u64,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub last_error: Option<ErrorRecord>,
    pub last_load_error: Option<ErrorRecord>,
}

impl PolicyStatus {
    /// Count one finished call and its latency.
    pub fn record_call(&self, elapsed: Duration, result: Result<(), &PolicyError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
        let Err(e) = result else { return };
        let counter = match e {
            PolicyError::Declined(_) => &self.declined,
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
            traps: load(&self.traps),
            timeouts: load(&self.timeouts),
            memory_cap: load(&self.memory_cap),
            invalid_outputs: load(&self.invalid_outputs),
            fallbacks: load(&self.fallbacks),
            latency_p50_us: self.latency.quantile_micros(0.5),
            latency_p99_us: self.latency.quantile_micros(0.99),
            last_error: info.last_error.clone(),
            last_load_error: info.last_load_error.clone(),
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
        s.record_call(Duration::from_millis(10), Err(&PolicyError::Timeout(Duration::from_millis(10))));
        let snap = s.snapshot("p");
        assert_eq!((snap.calls, snap.declined, snap.timeouts), (3, 1, 1));
        assert!(snap.last_error.unwrap().message.contains("10ms deadline"));
    }
}
