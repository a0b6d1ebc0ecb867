//! Time-series helpers policies keep needing: averages, percentiles, trends.
//!
//! They work on plain `f64` slices (or a [`MetricWindow`]'s samples) and skip
//! non-finite values, because a metric source may hand a policy a NaN and a
//! policy should not have to care. Every function returns `None` when there is
//! nothing left to compute on.

use crate::types::{MetricWindow, Sample};

fn finite(values: &[f64]) -> impl Iterator<Item = f64> + '_ {
    values.iter().copied().filter(|v| v.is_finite())
}

/// Arithmetic mean of the finite values.
pub fn mean(values: &[f64]) -> Option<f64> {
    mean_of(values.iter().copied())
}

/// Arithmetic mean of the finite values an iterator yields, without
/// collecting them first.
pub fn mean_of(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let finite = values.into_iter().filter(|v| v.is_finite());
    let (sum, n) = finite.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Mean of the last `n` finite values (a simple moving average).
pub fn moving_average(values: &[f64], n: usize) -> Option<f64> {
    let tail: Vec<f64> = finite(values).collect();
    let start = tail.len().saturating_sub(n.max(1));
    mean(&tail[start..])
}

/// Exponentially weighted moving average with smoothing factor `alpha` in (0, 1].
pub fn ewma(values: &[f64], alpha: f64) -> Option<f64> {
    let alpha = alpha.clamp(f64::MIN_POSITIVE, 1.0);
    finite(values).fold(None, |acc, v| Some(acc.map_or(v, |a| alpha * v + (1.0 - alpha) * a)))
}

/// The `p`-th percentile (0..=100), linearly interpolated between ranks.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = finite(values).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// A least-squares line through the samples: value = intercept + slope * t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Change per millisecond.
    pub slope: f64,
    /// Value at `origin`.
    pub intercept: f64,
    /// The time the intercept refers to (the first sample's).
    pub origin: i64,
}

impl Trend {
    /// The line's value at time `at`.
    pub fn at(&self, at: i64) -> f64 {
        self.intercept + self.slope * (at - self.origin) as f64
    }

    /// Change per second.
    pub fn per_second(&self) -> f64 {
        self.slope * 1000.0
    }
}

/// Fit a straight line through the finite samples; needs two distinct times.
pub fn linear_trend(samples: &[Sample]) -> Option<Trend> {
    fit(samples.iter().copied())
}

fn fit(samples: impl Iterator<Item = Sample> + Clone) -> Option<Trend> {
    let points = samples.filter(|s| s.value.is_finite());
    let origin = points.clone().next()?.at;
    let (sx, sy, n) = points.clone().fold((0.0, 0.0, 0usize), |(sx, sy, n), s| {
        (sx + (s.at - origin) as f64, sy + s.value, n + 1)
    });
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for s in points {
        let dx = (s.at - origin) as f64 - mx;
        sxx += dx * dx;
        sxy += dx * (s.value - my);
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some(Trend { slope, intercept: my - slope * mx, origin })
}

/// Per-second rate of a monotonically increasing counter over the window,
/// tolerating counter resets the way Prometheus' `rate()` does.
pub fn counter_rate(samples: &[Sample]) -> Option<f64> {
    let (first, last) = (samples.first()?, samples.last()?);
    let seconds = (last.at - first.at) as f64 / 1000.0;
    if seconds <= 0.0 {
        return None;
    }
    let increase: f64 = samples
        .windows(2)
        .map(|w| if w[1].value >= w[0].value { w[1].value - w[0].value } else { w[1].value })
        .sum();
    Some(increase / seconds)
}

impl MetricWindow {
    /// Mean of the samples in the last `window_ms` before `now`.
    pub fn mean_since(&self, now: i64, window_ms: i64) -> Option<f64> {
        mean_of(self.since(now, window_ms).map(|s| s.value))
    }

    /// Percentile of all samples in the window.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        percentile(self.values(), p)
    }

    /// Least-squares trend of all samples in the window.
    pub fn trend(&self) -> Option<Trend> {
        fit(self.samples())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: i64, value: f64) -> Sample {
        Sample { at, value }
    }

    #[test]
    fn averages_skip_non_finite_values() {
        assert_eq!(mean(&[1.0, f64::NAN, 3.0]), Some(2.0));
        assert_eq!(mean(&[f64::NAN]), None);
        assert_eq!(moving_average(&[1.0, 2.0, 3.0, 5.0], 2), Some(4.0));
        assert_eq!(moving_average(&[4.0], 10), Some(4.0));
        // 0.5 * 3 + 0.5 * (0.5 * 2 + 0.5 * 1) = 2.25
        assert_eq!(ewma(&[1.0, 2.0, 3.0], 0.5), Some(2.25));
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(percentile(&v, 50.0), Some(30.0));
        assert_eq!(percentile(&v, 0.0), Some(10.0));
        assert_eq!(percentile(&v, 100.0), Some(50.0));
        assert_eq!(percentile(&v, 90.0), Some(46.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn trend_recovers_a_line() {
        let t = linear_trend(&[s(0, 1.0), s(1000, 3.0), s(2000, 5.0)]).unwrap();
        assert!((t.per_second() - 2.0).abs() < 1e-12);
        assert!((t.at(3000) - 7.0).abs() < 1e-12);
        assert_eq!(linear_trend(&[s(5, 1.0), s(5, 2.0)]), None);
    }

    #[test]
    fn counter_rate_handles_resets() {
        // 0 -> 10 -> (reset) 5 -> 15 over 3 s: increase 10 + 5 + 10 = 25.
        let r = counter_rate(&[s(0, 0.0), s(1000, 10.0), s(2000, 5.0), s(3000, 15.0)]).unwrap();
        assert!((r - 25.0 / 3.0).abs() < 1e-12);
    }
}
