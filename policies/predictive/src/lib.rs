//! Predictive scaling: provision now for the load expected when a launch
//! made now would be serving.
//!
//! A reactive rule sees a rise only once it has happened, and then waits out
//! the boot delay; on a daily cycle that is every morning's ramp spent short
//! of capacity. This strategy forecasts the load over a horizon at least as
//! long as that delay and asks for enough instances for the busiest step in
//! it, never fewer than the load seen right now needs.
//!
//! The forecast comes from [`model`]: seasonal naive, Holt-Winters with daily
//! and weekly seasons, and a linear trend, each scored on its own past
//! forecasts, the most accurate one used. The model lives in the policy
//! state, so a restart or a hot swap carries on with what it learnt. Its
//! accuracy (the chosen method's recent error relative to the load) sets the
//! proposal's confidence and is reported in every reason. A step more than
//! `spike_sigmas` standard deviations above the recent mean is reported as a
//! spike: no forecast saw it coming, and the proposal follows the load seen.
//!
//! Settings:
//! ```toml
//! metric = "load"          # a pool-wide load (requests per step, jobs...)
//! per_instance = 40.0      # load one instance should carry
//! horizon_secs = 360       # look this far ahead: at least the boot delay
//! horizon_steps = 1        # and at least this many steps
//! headroom = 0.0           # extra share on top of the forecast
//! error_headroom = 0.0     # and this many times the recent relative error
//! floor_at_current = true  # never below what the load seen now needs
//! anchor = true            # start the forecast from the load seen now
//! ```
//!
//! `anchor = true` takes the level from the newest load (the step still
//! filling) and only the change from the method: the load now plus how much
//! the method expects it to move by the target step. A seasonal model lags
//! a level shift by many steps; the anchored forecast does not, and it uses
//! the one sample the model has not learnt from yet.
//!
//! `floor_at_current = false` trusts the forecast on the way down as well:
//! it lets capacity go as the forecast falls instead of waiting for the load
//! to fall first, the cost-minded choice when the forecast is good (its
//! confidence says how good).

use scalewise_sdk::prelude::*;

pub mod model;
use model::{Method, Model, Smoothing};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The load series to forecast: a pool-wide total, not a per-member average.
    pub metric: String,
    /// Load one instance should carry.
    pub per_instance: f64,
    /// Forecast at least this far ahead (the boot delay, or more).
    #[serde(default = "d_horizon")]
    pub horizon_secs: u64,
    /// And at least this many steps ahead.
    #[serde(default = "d_horizon_steps")]
    pub horizon_steps: u32,
    /// The model's step; default: the spacing of the samples, at least a minute.
    #[serde(default)]
    pub step_secs: Option<u64>,
    /// Extra capacity on top of the forecast, as a share (0.1 = 10 %).
    #[serde(default)]
    pub headroom: f64,
    /// More headroom the worse the forecast has been lately: this many
    /// times the chosen method's recent relative error (0.08 = 8 %) is
    /// added to `headroom`. Noisy load earns a margin, a steady one none.
    #[serde(default)]
    pub error_headroom: f64,
    /// Which methods may be chosen (default: all three).
    #[serde(default = "d_methods")]
    pub methods: Vec<Method>,
    #[serde(default)]
    pub smoothing: Smoothing,
    /// Weight of the newest error in each method's running error.
    #[serde(default = "d_error_weight")]
    pub error_weight: f64,
    /// A step this many standard deviations above the recent mean is a spike.
    #[serde(default = "d_spike")]
    pub spike_sigmas: f64,
    /// Never propose less than the load seen now needs (default true).
    #[serde(default = "d_true")]
    pub floor_at_current: bool,
    /// Anchor the forecast on the load seen now (default true).
    #[serde(default = "d_true")]
    pub anchor: bool,
}

fn d_true() -> bool {
    true
}

fn d_horizon() -> u64 {
    300
}
fn d_horizon_steps() -> u32 {
    1
}
fn d_methods() -> Vec<Method> {
    Method::ALL.to_vec()
}
fn d_error_weight() -> f64 {
    0.05
}
fn d_spike() -> f64 {
    2.0
}

pub struct Predictive;

impl Strategy for Predictive {
    type Settings = Settings;
    type State = Model;
    /// Some 1,600 numbers: as JSON their decoding and encoding cost more
    /// than the forecast itself.
    const STATE_ENCODING: StateEncoding = StateEncoding::Binary;

    fn validate(s: &Settings) -> Result<(), String> {
        if s.metric.is_empty() {
            return Err("metric: name the load series to forecast".into());
        }
        if !(s.per_instance.is_finite() && s.per_instance > 0.0) {
            return Err(format!("per_instance: must be a positive number, got {}", s.per_instance));
        }
        if s.horizon_steps == 0 && s.horizon_secs == 0 {
            return Err("horizon_secs: forecast at least one step ahead".into());
        }
        if s.step_secs == Some(0) {
            return Err("step_secs: must be at least 1".into());
        }
        if !(s.headroom.is_finite() && s.headroom >= 0.0) {
            return Err(format!("headroom: must be a number ≥ 0, got {}", s.headroom));
        }
        if !(s.error_headroom.is_finite() && s.error_headroom >= 0.0) {
            return Err(format!("error_headroom: must be a number ≥ 0, got {}", s.error_headroom));
        }
        if s.methods.is_empty() {
            return Err("methods: allow at least one of seasonal_naive, holt_winters, linear_trend".into());
        }
        let m = &s.smoothing;
        for (name, v) in [("alpha", m.alpha), ("beta", m.beta), ("gamma", m.gamma), ("omega", m.omega)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("smoothing.{name}: must be in [0, 1], got {v}"));
            }
        }
        if !(m.phi > 0.0 && m.phi <= 1.0) {
            return Err(format!("smoothing.phi: must be in (0, 1], got {}", m.phi));
        }
        if !(s.error_weight > 0.0 && s.error_weight <= 1.0) {
            return Err(format!("error_weight: must be in (0, 1], got {}", s.error_weight));
        }
        if !(s.spike_sigmas.is_finite() && s.spike_sigmas > 0.0) {
            return Err(format!("spike_sigmas: must be a positive number, got {}", s.spike_sigmas));
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, model: &mut Model) -> Result<Proposal, String> {
        let window = input.metric(&s.metric).filter(|w| !w.is_empty()).ok_or_else(|| format!("no samples of `{}`", s.metric))?;
        let horizon_of = |step_ms: i64| ((s.horizon_secs as i64 * 1000 + step_ms - 1) / step_ms).max(i64::from(s.horizon_steps));
        // Take in the samples not seen before, oldest first. A step is
        // observed once a sample of a later one arrives; until then it is
        // the step still filling, kept in the state, and counts only as
        // "the load now". Windows may overlap or leave gaps between calls:
        // nothing is counted twice, and nothing seen is lost.
        for sample in window.samples() {
            if !sample.value.is_finite() || model.last_sample_at.is_some_and(|l| sample.at <= l) {
                continue;
            }
            if let Some(l) = model.last_sample_at {
                model.spacing = Some(model.spacing.map_or(sample.at - l, |sp| sp.min(sample.at - l)));
            }
            model.last_sample_at = Some(sample.at);
            let step_ms = step_ms(s, model.spacing);
            if model.step_ms != step_ms {
                // First calls, or the step changed: start afresh at this step.
                let (last, spacing) = (model.last_sample_at, model.spacing);
                *model = Model::new(step_ms);
                (model.last_sample_at, model.spacing) = (last, spacing);
            }
            let k = sample.at.div_euclid(step_ms);
            match model.partial {
                Some((pk, sum, n)) if pk == k => model.partial = Some((pk, sum + sample.value, n + 1)),
                Some((pk, sum, n)) => {
                    let current = input.now.div_euclid(step_ms).max(k);
                    model.observe(pk, sum / f64::from(n), horizon_of(step_ms) + (current - pk), &s.smoothing, s.error_weight, s.anchor);
                    model.partial = Some((k, sample.value, 1));
                }
                None => model.partial = Some((k, sample.value, 1)),
            }
        }
        let Some((_, sum, n)) = model.partial else {
            return Err(format!("no finite samples of `{}`", s.metric));
        };
        let now_load = sum / f64::from(n);
        let step_ms = model.step_ms;
        let current_step = input.now.div_euclid(step_ms);
        let horizon = horizon_of(step_ms);

        let pool = &input.pool;
        let Some(forecast) = model.forecast(current_step + 1, current_step + horizon, &s.smoothing, &s.methods, s.anchor.then_some((current_step, now_load))) else {
            let desired = pool.clamp((now_load * (1.0 + s.headroom) / s.per_instance).ceil());
            return Ok(Proposal::new(desired, 0.3, format!("no history yet: {} {now_load:.1} needs {desired}", s.metric)));
        };
        let spike = model.recent_stats().filter(|(mean, sd)| *sd > 0.0 && now_load > mean + s.spike_sigmas * sd);
        // A spike no forecast saw coming is followed as seen, floor or not.
        let need = if s.floor_at_current || spike.is_some() { forecast.peak.max(now_load) } else { forecast.peak };
        // The error is capped at 100 %: a model still finding its feet must
        // not ask for twice the load.
        let headroom = s.headroom + s.error_headroom * forecast.relative_error.unwrap_or(0.0).min(1.0);
        let desired = pool.clamp((need * (1.0 + headroom) / s.per_instance).ceil());
        let accuracy = match forecast.relative_error {
            Some(e) => format!("recent error {:.1}%", e * 100.0),
            None => format!("{} steps learnt, error not scored yet", model.observed),
        };
        let confidence = forecast.relative_error.map_or(0.3, |e| (1.0 / (1.0 + e)).clamp(0.05, 1.0));
        // Accuracy as numbers, for the host's `scalewise_policy_gauge`:
        // what was predicted (the peak ahead), what is (the load now), and
        // the chosen method's recent error between the two.
        gauge::report("forecast_peak", forecast.peak);
        gauge::report("load_now", now_load);
        gauge::report("steps_learnt", model.observed as f64);
        if let Some(e) = forecast.relative_error {
            gauge::report("relative_error", e);
        }
        let mut reason = format!(
            "{}: peak {:.1} over the next {horizon} steps ({accuracy}); {} now {now_load:.1}; {desired} at {} per instance",
            forecast.method.name(),
            forecast.peak,
            s.metric,
            s.per_instance
        );
        if let Some((mean, sd)) = spike {
            reason = format!("spike: {now_load:.1} is more than {} sd above the recent mean {mean:.1} (sd {sd:.1}); {reason}", s.spike_sigmas);
        }
        Ok(Proposal::new(desired, if spike.is_some() { confidence.min(0.5) } else { confidence }, reason))
    }
}

/// The model's step: the configured one, or the samples' spacing (at least
/// a minute, so per-second samples are aggregated into minutes; a minute
/// until two samples have been seen).
fn step_ms(s: &Settings, spacing: Option<i64>) -> i64 {
    match s.step_secs {
        Some(secs) => secs as i64 * 1000,
        None => spacing.unwrap_or(60_000).max(60_000),
    }
}

export_strategy!(Predictive);

#[cfg(test)]
mod tests;
