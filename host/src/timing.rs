//! Latency measurement shared by `scalewise policy bench` and `cargo bench`.
//!
//! Each call is timed on its own (not a batch divided by its size), because
//! what matters for a control loop is the tail, and a mean hides it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latency percentiles of timed calls, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Time `iterations` calls of `f`, after a warm-up, and summarise them.
pub fn measure(iterations: u32, mut f: impl FnMut()) -> Percentiles {
    warm_up(iterations, &mut f);
    timed_round(iterations, &mut f)
}

fn warm_up(iterations: u32, f: &mut impl FnMut()) {
    for _ in 0..iterations.clamp(1, 500) {
        f();
    }
}

fn timed_round(iterations: u32, f: &mut impl FnMut()) -> Percentiles {
    let mut micros: Vec<f64> = (0..iterations.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1];
    Percentiles { p50: at(0.5), p99: at(0.99), mean: micros.iter().sum::<f64>() / micros.len() as f64 }
}

/// The percentiles of several rounds of timed calls.
///
/// Why rounds: on a shared two-core VM, a burst of interference from outside
/// the process (a neighbour's load, the hypervisor) lands on a stretch of
/// consecutive calls and inflates one stretch's tail. The median round's
/// p99 is the tail of the code under test; the worst round's p99 is kept
/// beside it, so the interference is reported, not hidden.
#[derive(Debug, Clone)]
pub struct Rounds(pub Vec<Percentiles>);

impl Rounds {
    /// The median of each percentile across rounds (the mean of means).
    pub fn median(&self) -> Percentiles {
        let median = |pick: fn(&Percentiles) -> f64| {
            let mut v: Vec<f64> = self.0.iter().map(pick).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mean = self.0.iter().map(|p| p.mean).sum::<f64>() / self.0.len() as f64;
        Percentiles { p50: median(|p| p.p50), p99: median(|p| p.p99), mean }
    }

    /// The lowest and highest p99 of any round.
    pub fn p99_range(&self) -> (f64, f64) {
        let p99 = self.0.iter().map(|p| p.p99);
        (p99.clone().fold(f64::INFINITY, f64::min), p99.fold(0.0, f64::max))
    }
}

/// Time `iterations` calls of `f` in `rounds` equal rounds, after one warm-up.
pub fn measure_rounds(rounds: u32, iterations: u32, mut f: impl FnMut()) -> Rounds {
    let rounds = rounds.max(1);
    warm_up(iterations, &mut f);
    Rounds((0..rounds).map(|_| timed_round(iterations / rounds, &mut f)).collect())
}

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

    /// Add another histogram's counts to this one.
    pub fn merge(&self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter().zip(&other.buckets) {
            a.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// The samples recorded since `earlier`, a copy of this histogram taken
    /// before: what a benchmark measures after its warm-up.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let buckets = self.buckets.iter().zip(&earlier.buckets);
        Self { buckets: buckets.map(|(a, b)| AtomicU64::new(a.load(Ordering::Relaxed).saturating_sub(b.load(Ordering::Relaxed)))).collect() }
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

/// CPU time this process has used (user + system), in seconds.
pub fn cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered() {
        let mut n = 0u64;
        let p = measure(1000, || {
            n += 1;
            if n.is_multiple_of(50) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        assert!(p.p50 <= p.p99, "{p:?}");
        assert!(p.p99 >= 100.0, "the slow 2% must show in p99: {p:?}");
        assert!(p.p50 < 100.0, "{p:?}");
    }

    #[test]
    fn rounds_report_the_median_round_and_the_worst() {
        let mut n = 0u32;
        let r = measure_rounds(5, 1000, || {
            n += 1;
            // 500 warm-up calls, then rounds of 200: the second round is calls 701..=900.
            if (701..=900).contains(&n) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        assert_eq!(r.0.len(), 5);
        let (low, high) = r.p99_range();
        assert!(high >= 100.0, "the disturbed round shows in the range: {r:?}");
        assert!(low < 100.0 && r.median().p99 < 100.0, "one disturbed round moves no median: {r:?}");
    }
}
