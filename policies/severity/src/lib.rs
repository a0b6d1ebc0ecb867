//! Severity: how bad is it right now, and how hard to react.
//!
//! Operators of worker pools think in levels, not ratios: a queue a little
//! long is LOW, requests timing out is CRITICAL. This strategy grades each
//! configured signal (queue depth, latency p95/p99, error rate, a drop in
//! throughput) into one of five levels by its thresholds, takes the worst,
//! and moves the pool by that level's step. At CRITICAL it scales up in an
//! emergency: at least `emergency_factor` times the current capacity,
//! whatever the other steps say, with full confidence, so a consensus like
//! `safest` or `hybrid` lets it through at once.
//!
//! Settings:
//! ```toml
//! signals = [
//!   # value < 10: VERY_LOW, < 50: LOW, < 200: MEDIUM, < 500: HIGH, else CRITICAL
//!   { metric = "queue_depth", thresholds = [10, 50, 200, 500] },
//!   { metric = "latency_ms", statistic = "p99", thresholds = [50, 100, 300, 1000] },
//!   { metric = "error_rate", thresholds = [0.001, 0.01, 0.05, 0.2] },
//!   # the share throughput fell below the window's best
//!   { metric = "throughput", statistic = "drop", thresholds = [0.05, 0.1, 0.3, 0.5] },
//! ]
//! step_type = "members"      # or "percent" (of the current capacity)
//! steps = { very_low = -1, high = 2, critical = 4 }   # the default
//! emergency_factor = 2.0     # CRITICAL: at least this times the capacity
//! ```
//!
//! A level left out of `steps` has no opinion: there the strategy abstains,
//! naming the level. That matters beside other experts: under `safest` or
//! `hybrid` a "hold" vote at a calm level would veto every scale-down the
//! other experts ask for.
//!
//! A signal with no samples is left out (and named in the reason); with none
//! left the strategy abstains. VERY_LOW needs every signal to say so, as
//! scale-in on one quiet signal while another is busy would be wrong; the
//! worst signal decides every other level.

use scalewise_sdk::prelude::*;
use scalewise_sdk::series;

/// The five levels, mildest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    VeryLow,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    const ALL: [Level; 5] = [Level::VeryLow, Level::Low, Level::Medium, Level::High, Level::Critical];

    pub fn name(self) -> &'static str {
        ["VERY_LOW", "LOW", "MEDIUM", "HIGH", "CRITICAL"][self as usize]
    }

    /// The level of `value` against four ascending thresholds.
    fn of(value: f64, thresholds: &[f64; 4]) -> Level {
        Level::ALL[thresholds.iter().take_while(|t| value >= **t).count()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The newest sample.
    #[default]
    Last,
    Mean,
    Max,
    P95,
    P99,
    /// How far the newest sample fell below the window's highest, as a share.
    Drop,
}

impl Statistic {
    fn name(self) -> &'static str {
        ["last", "mean", "max", "p95", "p99", "drop"][self as usize]
    }

    fn of(self, w: &MetricWindow) -> Option<f64> {
        let values: Vec<f64> = w.values().iter().copied().filter(|v| v.is_finite()).collect();
        let last = *values.last()?;
        match self {
            Statistic::Last => Some(last),
            Statistic::Mean => series::mean(&values),
            Statistic::Max => values.iter().cloned().reduce(f64::max),
            Statistic::P95 => series::percentile(&values, 95.0),
            Statistic::P99 => series::percentile(&values, 99.0),
            Statistic::Drop => {
                let best = values.iter().cloned().fold(0.0, f64::max);
                Some(if best > 0.0 { ((best - last) / best).max(0.0) } else { 0.0 })
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub metric: String,
    #[serde(default)]
    pub statistic: Statistic,
    /// Where LOW, MEDIUM, HIGH and CRITICAL begin, ascending.
    pub thresholds: [f64; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    #[default]
    Members,
    Percent,
}

/// The change at each level, in members or percent of the capacity; a
/// level left out has no opinion.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Steps {
    pub very_low: Option<f64>,
    pub low: Option<f64>,
    pub medium: Option<f64>,
    pub high: Option<f64>,
    pub critical: Option<f64>,
}

fn d_steps() -> Steps {
    Steps { very_low: Some(-1.0), high: Some(2.0), critical: Some(4.0), ..Steps::default() }
}

impl Steps {
    fn all(&self) -> [Option<f64>; 5] {
        [self.very_low, self.low, self.medium, self.high, self.critical]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub signals: Vec<Signal>,
    #[serde(default)]
    pub step_type: StepType,
    #[serde(default = "d_steps")]
    pub steps: Steps,
    #[serde(default = "d_emergency")]
    pub emergency_factor: f64,
}

fn d_emergency() -> f64 {
    2.0
}

pub struct Severity;

impl Strategy for Severity {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if s.signals.is_empty() {
            return Err("signals: name at least one metric with its thresholds".into());
        }
        for (i, sig) in s.signals.iter().enumerate() {
            if sig.metric.is_empty() {
                return Err(format!("signals[{i}].metric: name the series"));
            }
            let t = &sig.thresholds;
            if !t.iter().all(|v| v.is_finite()) || !t.windows(2).all(|w| w[0] <= w[1]) {
                return Err(format!("signals[{i}].thresholds: four finite numbers, ascending (where LOW, MEDIUM, HIGH and CRITICAL begin), got {t:?}"));
            }
        }
        let steps: Vec<f64> = s.steps.all().into_iter().flatten().collect();
        if !steps.iter().all(|v| v.is_finite()) {
            return Err("steps: every step must be a number".into());
        }
        if !steps.windows(2).all(|w| w[0] <= w[1]) {
            return Err(format!("steps: must not shrink as the level rises, got {steps:?}"));
        }
        if s.steps.critical.is_none() {
            return Err("steps.critical: CRITICAL must have a step (the emergency scale-up adds to it)".into());
        }
        if !(s.emergency_factor.is_finite() && s.emergency_factor >= 1.0) {
            return Err(format!("emergency_factor: must be a number ≥ 1, got {}", s.emergency_factor));
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let mut graded = Vec::new();
        let mut missing = Vec::new();
        for sig in &s.signals {
            match input.metric(&sig.metric).and_then(|w| sig.statistic.of(w)) {
                Some(v) => graded.push((sig, v, Level::of(v, &sig.thresholds))),
                None => missing.push(sig.metric.as_str()),
            }
        }
        if graded.is_empty() {
            return Err(format!("no samples of {}", missing.join(", ")));
        }
        // The worst signal: VERY_LOW only when every signal is very low.
        let level = graded.iter().map(|g| g.2).max().expect("not empty");

        let signals: Vec<String> = graded
            .iter()
            .map(|(sig, v, l)| format!("{} {} {v:.3} is {}", sig.metric, sig.statistic.name(), l.name()))
            .collect();
        let mut reason = format!("{}: {}", level.name(), signals.join(", "));
        if !missing.is_empty() {
            reason.push_str(&format!("; no samples of {}", missing.join(", ")));
        }
        let Some(step) = s.steps.all()[level as usize] else {
            return Err(no_opinion(format!("{reason}; no step at {}", level.name())));
        };
        let current = f64::from(input.pool.capacity());
        let change = match s.step_type {
            StepType::Members => step,
            StepType::Percent => (current * step / 100.0).round(),
        };
        let mut desired = current + change;
        let emergency = level == Level::Critical;
        if emergency {
            desired = desired.max((current * s.emergency_factor).ceil()).max(current + 1.0);
        }
        let desired = input.pool.clamp(desired);
        if emergency {
            reason.push_str(&format!("; EMERGENCY scale-up to {desired} (at least {}× {current})", s.emergency_factor));
        } else {
            reason.push_str(&format!("; step {change:+} -> {desired}"));
        }
        let confidence = match level {
            Level::Critical => 1.0,
            Level::High => 0.9,
            _ => 0.7,
        };
        Ok(Proposal::new(desired, confidence, reason))
    }
}

export_strategy!(Severity);

#[cfg(test)]
mod tests;
