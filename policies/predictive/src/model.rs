//! The forecasting model a `predictive` policy keeps in its state.
//!
//! Three methods run side by side on the same observations (one per step,
//! the mean of the step's samples):
//!
//! - **seasonal naive**: the same time of day, one day earlier;
//! - **Holt-Winters**: additive level, damped trend, and two seasonal
//!   profiles, time of day and hour of week (Taylor's double-seasonal
//!   form), updated by exponential smoothing;
//! - **linear trend**: a least-squares line through the last few steps.
//!
//! Every step each method forecasts the step `horizon` ahead; when that step
//! arrives its absolute error feeds an exponentially weighted mean. The
//! method with the smallest recent error is the one used, and its relative
//! error is the policy's confidence. Why keep all three: a daily cycle is
//! best told by the seasonal methods once a day has been seen, while the
//! first hours (and traces with no cycle) are better served by the trend.
//!
//! The seasonal profiles are kept at a bounded resolution (at most
//! [`DAY_BUCKETS`] buckets a day, [`WEEK_BUCKETS`] a week) as `f32`s, and the
//! policy's state uses the SDK's binary encoding: the profiles travel as
//! their bytes (about 7 KB in all), copied rather than parsed, whatever the
//! step.

use std::collections::VecDeque;

use scalewise_sdk::Sample;
use scalewise_sdk::series::linear_trend;
use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// Time-of-day resolution: five minutes.
pub const DAY_BUCKETS: usize = 288;
/// Hour of the week.
pub const WEEK_BUCKETS: usize = 168;
/// Observations kept for the trend line and the spike statistics.
pub const RECENT: usize = 60;
/// Evaluated forecasts before a method's error is trusted.
pub const MIN_EVALUATED: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    SeasonalNaive,
    HoltWinters,
    LinearTrend,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::SeasonalNaive, Method::HoltWinters, Method::LinearTrend];

    pub fn name(self) -> &'static str {
        match self {
            Method::SeasonalNaive => "seasonal naive",
            Method::HoltWinters => "Holt-Winters",
            Method::LinearTrend => "linear trend",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Smoothing constants of Holt-Winters.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoothing {
    /// Level.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// Trend.
    #[serde(default = "d_beta")]
    pub beta: f64,
    /// Time-of-day profile.
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    /// Hour-of-week profile.
    #[serde(default = "d_omega")]
    pub omega: f64,
    /// Trend damping per step, in (0, 1].
    #[serde(default = "d_phi")]
    pub phi: f64,
}

fn d_alpha() -> f64 {
    0.3
}
fn d_beta() -> f64 {
    0.02
}
fn d_gamma() -> f64 {
    0.2
}
fn d_omega() -> f64 {
    0.05
}
fn d_phi() -> f64 {
    0.95
}

impl Default for Smoothing {
    fn default() -> Self {
        Self { alpha: d_alpha(), beta: d_beta(), gamma: d_gamma(), omega: d_omega(), phi: d_phi() }
    }
}

/// A forecast waiting for its step to arrive, to be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    step: i64,
    values: [f64; 3],
}

/// Everything the policy learnt, persisted by the host between calls.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Model {
    /// Step length the model was built with (ms); a change starts afresh.
    pub step_ms: i64,
    /// The last step ingested, in steps since the epoch.
    pub last_step: Option<i64>,
    pub observed: u64,
    level: f64,
    trend: f64,
    #[serde(with = "scalewise_sdk::state::f32s")]
    day: Vec<f64>,
    #[serde(with = "scalewise_sdk::state::f32s")]
    week: Vec<f64>,
    /// Per time-of-day bucket: the mean of its previous day's visit and the
    /// running sum and count of the current one, and which day each was.
    #[serde(with = "scalewise_sdk::state::f32s")]
    naive_prev: Vec<f64>,
    #[serde(with = "scalewise_sdk::state::f32s")]
    naive_sum: Vec<f64>,
    #[serde(with = "scalewise_sdk::state::f32s")]
    naive_n: Vec<f64>,
    #[serde(with = "scalewise_sdk::state::f32s")]
    naive_prev_day: Vec<f64>,
    #[serde(with = "scalewise_sdk::state::f32s")]
    naive_day: Vec<f64>,
    recent: VecDeque<f64>,
    pending: VecDeque<Pending>,
    /// Exponentially weighted mean absolute error per method, and how many
    /// forecasts each has had scored.
    error: [f64; 3],
    evaluated: [u32; 3],
    /// Exponentially weighted mean of the observations (for relative error).
    scale: f64,
    /// The step still filling: its index, and the sum and count of its samples.
    pub partial: Option<(i64, f64, u32)>,
    /// The newest sample taken in, and the smallest spacing seen between two.
    pub last_sample_at: Option<i64>,
    pub spacing: Option<i64>,
}

/// The load seen at an anchor step, and a method's own value for that step.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    load: f64,
    fitted: f64,
}

/// What the model says about the coming steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub method: Method,
    /// The largest forecast over the horizon.
    pub peak: f64,
    /// The chosen method's recent mean absolute error, relative to the
    /// load's recent mean (0.08 = 8 %); None until enough were scored.
    pub relative_error: Option<f64>,
}

impl Model {
    pub fn new(step_ms: i64) -> Self {
        Self {
            step_ms,
            day: vec![0.0; DAY_BUCKETS],
            week: vec![0.0; WEEK_BUCKETS],
            naive_prev: vec![0.0; DAY_BUCKETS],
            naive_sum: vec![0.0; DAY_BUCKETS],
            naive_n: vec![0.0; DAY_BUCKETS],
            naive_prev_day: vec![-1.0; DAY_BUCKETS],
            naive_day: vec![-1.0; DAY_BUCKETS],
            ..Self::default()
        }
    }

    fn day_bucket(&self, step: i64) -> usize {
        let t = (step * self.step_ms).rem_euclid(DAY_MS);
        (t / (DAY_MS / DAY_BUCKETS as i64)) as usize
    }

    fn week_bucket(&self, step: i64) -> usize {
        let t = (step * self.step_ms).rem_euclid(WEEK_MS);
        (t / (WEEK_MS / WEEK_BUCKETS as i64)) as usize
    }

    /// The recent observations' mean and standard deviation.
    pub fn recent_stats(&self) -> Option<(f64, f64)> {
        let n = self.recent.len();
        if n < 2 {
            return None;
        }
        let mean = self.recent.iter().sum::<f64>() / n as f64;
        let var = self.recent.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Some((mean, var.sqrt()))
    }

    /// Take in the observation of `step`, after scoring the forecasts made
    /// for it, then forecast `horizon` steps ahead for scoring later.
    /// With `anchored`, the forecasts scored are the anchored ones (see
    /// [`Model::forecast`]), anchored on this observation.
    pub fn observe(&mut self, step: i64, y: f64, horizon: i64, s: &Smoothing, error_weight: f64, anchored: bool) {
        self.score(step, y, error_weight);
        self.update(step, y, s);
        let target = step + horizon.max(1);
        let anchor = anchored.then_some((step, y));
        let values = Method::ALL.map(|m| self.predict_from(m, step, target, s, self.anchor(m, step, s, anchor)));
        self.pending.push_back(Pending { step: target, values });
    }

    fn score(&mut self, step: i64, y: f64, w: f64) {
        while let Some(p) = self.pending.front() {
            if p.step > step {
                break;
            }
            let p = self.pending.pop_front().expect("just seen");
            if p.step == step {
                for m in Method::ALL {
                    let i = m.index();
                    let e = (p.values[i] - y).abs();
                    self.error[i] = if self.evaluated[i] == 0 { e } else { w * e + (1.0 - w) * self.error[i] };
                    self.evaluated[i] = self.evaluated[i].saturating_add(1);
                }
            }
        }
    }

    fn update(&mut self, step: i64, y: f64, s: &Smoothing) {
        let (di, wi) = (self.day_bucket(step), self.week_bucket(step));
        match self.last_step {
            None => {
                self.level = y;
                self.trend = 0.0;
                self.scale = y.abs();
            }
            Some(last) => {
                let gap = (step - last).max(1) as f64;
                let (l0, b0) = (self.level, self.trend);
                let expected_level = l0 + b0 * gap;
                let level = s.alpha * (y - self.day[di] - self.week[wi]) + (1.0 - s.alpha) * expected_level;
                self.trend = s.beta * (level - l0) / gap + (1.0 - s.beta) * b0 * s.phi;
                self.level = level;
                self.day[di] = s.gamma * (y - level - self.week[wi]) + (1.0 - s.gamma) * self.day[di];
                self.week[wi] = s.omega * (y - level - self.day[di]) + (1.0 - s.omega) * self.week[wi];
                self.scale = 0.05 * y.abs() + 0.95 * self.scale;
            }
        }
        let day = self.day_of(step) as f64;
        if self.naive_day[di] != day {
            if self.naive_n[di] > 0.0 {
                self.naive_prev[di] = self.naive_sum[di] / self.naive_n[di];
                self.naive_prev_day[di] = self.naive_day[di];
            }
            self.naive_day[di] = day;
            self.naive_sum[di] = 0.0;
            self.naive_n[di] = 0.0;
        }
        self.naive_sum[di] += y;
        self.naive_n[di] += 1.0;
        self.recent.push_back(y);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.last_step = Some(step);
        self.observed += 1;
    }

    fn day_of(&self, step: i64) -> i64 {
        (step * self.step_ms).div_euclid(DAY_MS)
    }

    /// The mean of `target`'s time-of-day bucket one day before it, if the
    /// model saw that bucket then.
    fn naive(&self, target: i64) -> Option<f64> {
        let i = self.day_bucket(target);
        let yesterday = (self.day_of(target) - 1) as f64;
        if self.naive_day[i] == yesterday && self.naive_n[i] > 0.0 {
            Some(self.naive_sum[i] / self.naive_n[i])
        } else if self.naive_prev_day[i] == yesterday {
            Some(self.naive_prev[i])
        } else {
            None
        }
    }

    /// Method `m`'s forecast for `target`; with an anchor, the load seen at
    /// the anchor's step plus the change the method expects from that step
    /// to `target`. The method supplies the shape, the newest load the
    /// level: a model a little off in level (a slow Monday, a growing month)
    /// still gets the coming hour's rise right.
    fn predict_from(&self, m: Method, now: i64, target: i64, s: &Smoothing, anchor: Option<Anchor>) -> f64 {
        match anchor {
            Some(a) => (a.load + self.predict(m, now, target, s) - a.fitted).max(0.0),
            None => self.predict(m, now, target, s),
        }
    }

    /// An anchor `(step, load)` for method `m`, with the method's own value
    /// at that step worked out once for all the targets forecast from it.
    fn anchor(&self, m: Method, now: i64, s: &Smoothing, anchor: Option<(i64, f64)>) -> Option<Anchor> {
        anchor.map(|(step, load)| Anchor { load, fitted: self.predict(m, now, step, s) })
    }

    /// Method `m`'s forecast for `target`, made at `now` (the last step in);
    /// at `target == now`, the method's fitted value for that step.
    fn predict(&self, m: Method, now: i64, target: i64, s: &Smoothing) -> f64 {
        let h = (target - now).max(0);
        let v = match m {
            Method::HoltWinters => {
                // Damped trend: phi + phi^2 + ... + phi^h.
                let damp = if (s.phi - 1.0).abs() < 1e-12 { h as f64 } else { s.phi * (1.0 - s.phi.powi(h as i32)) / (1.0 - s.phi) };
                self.level + self.trend * damp + self.day[self.day_bucket(target)] + self.week[self.week_bucket(target)]
            }
            Method::SeasonalNaive => self.naive(target).or_else(|| self.recent.back().copied()).unwrap_or(0.0),
            Method::LinearTrend => {
                // A line through the last few steps, one "millisecond" a step.
                let n = self.recent.len().min(15);
                let points: Vec<Sample> = self.recent.iter().skip(self.recent.len() - n).enumerate().map(|(i, &value)| Sample { at: i as i64, value }).collect();
                match linear_trend(&points) {
                    Some(line) => line.at(n as i64 - 1 + h),
                    None => points.last().map_or(0.0, |s| s.value),
                }
            }
        };
        v.max(0.0)
    }

    /// The method with the smallest recent error (Holt-Winters until every
    /// method has been scored enough), and its peak over the steps
    /// `from..=to`.
    /// With an anchor `(step, load)` (the step still filling and its load so
    /// far), each forecast is anchored on it (see `predict_from`).
    pub fn forecast(&self, from: i64, to: i64, s: &Smoothing, allowed: &[Method], anchor: Option<(i64, f64)>) -> Option<Forecast> {
        let now = self.last_step?;
        let trusted = allowed.iter().all(|m| self.evaluated[m.index()] >= MIN_EVALUATED);
        let method = if trusted {
            *allowed.iter().min_by(|a, b| self.error[a.index()].total_cmp(&self.error[b.index()]))?
        } else if allowed.contains(&Method::HoltWinters) {
            Method::HoltWinters
        } else {
            *allowed.first()?
        };
        let anchor = self.anchor(method, now, s, anchor);
        let peak = (from.max(now + 1)..=to.max(now + 1)).map(|t| self.predict_from(method, now, t, s, anchor)).fold(0.0, f64::max);
        let relative_error = (self.evaluated[method.index()] >= MIN_EVALUATED).then(|| self.error[method.index()] / self.scale.max(1e-9));
        Some(Forecast { method, peak, relative_error })
    }
}

#[cfg(test)]
mod tests;
