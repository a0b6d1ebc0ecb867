//! Step scaling: AWS Auto Scaling's step adjustments.
//!
//! An alarm compares a metric statistic with a threshold. When it breaches,
//! the breach size (`value - threshold`) selects one step whose bounds are
//! relative to the threshold, as `MetricIntervalLowerBound` and
//! `MetricIntervalUpperBound` are in AWS, and that step's adjustment is
//! applied: a change in capacity, an exact capacity, or a percent change with
//! a minimum magnitude. The scale-out alarm is checked before the scale-in one.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentType {
    #[default]
    ChangeInCapacity,
    ExactCapacity,
    PercentChangeInCapacity,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    #[default]
    Mean,
    Max,
    Min,
    Last,
    P95,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Inclusive lower bound of `value - threshold`; absent means -infinity.
    pub lower: Option<f64>,
    /// Exclusive upper bound of `value - threshold`; absent means +infinity.
    pub upper: Option<f64>,
    pub adjustment: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarm {
    pub threshold: f64,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub metric: String,
    #[serde(default)]
    pub statistic: Statistic,
    #[serde(default = "default_window")]
    pub window_secs: u32,
    #[serde(default)]
    pub adjustment_type: AdjustmentType,
    /// For percent changes: the smallest change in members.
    #[serde(default)]
    pub min_adjustment_magnitude: u32,
    /// Breaches when the statistic is above its threshold.
    pub scale_out: Option<Alarm>,
    /// Breaches when the statistic is below its threshold.
    pub scale_in: Option<Alarm>,
}

fn default_window() -> u32 {
    60
}

fn validate_alarm(field: &str, alarm: &Alarm) -> Result<(), String> {
    if alarm.steps.is_empty() {
        return Err(format!("{field}.steps: list at least one step"));
    }
    let mut bounds: Vec<(f64, f64)> = alarm
        .steps
        .iter()
        .map(|s| (s.lower.unwrap_or(f64::NEG_INFINITY), s.upper.unwrap_or(f64::INFINITY)))
        .collect();
    for (i, (lo, hi)) in bounds.iter().enumerate() {
        if lo >= hi {
            return Err(format!("{field}.steps[{i}]: lower bound {lo} must be below upper bound {hi}"));
        }
    }
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in bounds.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!("{field}.steps: intervals [{}, {}) and [{}, {}) overlap", w[0].0, w[0].1, w[1].0, w[1].1));
        }
    }
    Ok(())
}

fn statistic(window: &MetricWindow, now: i64, settings: &Settings) -> Option<f64> {
    let values = window.since(now, i64::from(settings.window_secs) * 1000).map(|s| s.value);
    let finite = values.clone().filter(|v| v.is_finite());
    match settings.statistic {
        Statistic::Mean => series::mean_of(values),
        Statistic::Max => finite.reduce(f64::max),
        Statistic::Min => finite.reduce(f64::min),
        Statistic::Last => finite.last(),
        Statistic::P95 => series::percentile(&finite.collect::<Vec<_>>(), 95.0),
    }
}

pub struct StepScaling;

impl StepScaling {
    fn apply(current: f64, adjustment: f64, s: &Settings) -> f64 {
        match s.adjustment_type {
            AdjustmentType::ChangeInCapacity => current + adjustment,
            AdjustmentType::ExactCapacity => adjustment,
            AdjustmentType::PercentChangeInCapacity => {
                let raw = current * adjustment / 100.0;
                // As AWS does: a change smaller than one member becomes one
                // member, a larger one is truncated toward zero, and the
                // minimum magnitude applies last.
                let mut change = if raw.abs() < 1.0 { raw.signum() } else { raw.trunc() };
                if change.abs() < f64::from(s.min_adjustment_magnitude) {
                    change = change.signum() * f64::from(s.min_adjustment_magnitude);
                }
                current + change
            }
        }
    }
}

impl Strategy for StepScaling {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if s.scale_out.is_none() && s.scale_in.is_none() {
            return Err("set scale_out, scale_in or both".into());
        }
        if let Some(a) = &s.scale_out {
            validate_alarm("scale_out", a)?;
        }
        if let Some(a) = &s.scale_in {
            validate_alarm("scale_in", a)?;
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let value = input
            .metric(&s.metric)
            .and_then(|w| statistic(w, input.now, s))
            .ok_or_else(|| format!("no samples for {} in the last {}s", s.metric, s.window_secs))?;
        let current = input.pool.capacity() as f64;
        let alarms = [("scale_out", &s.scale_out, true), ("scale_in", &s.scale_in, false)];
        for (name, alarm, above) in alarms {
            let Some(alarm) = alarm else { continue };
            let breach = value - alarm.threshold;
            let breached = if above { breach > 0.0 } else { breach < 0.0 };
            if !breached {
                continue;
            }
            let step = alarm.steps.iter().find(|st| {
                breach >= st.lower.unwrap_or(f64::NEG_INFINITY) && breach < st.upper.unwrap_or(f64::INFINITY)
            });
            let Some(step) = step else {
                return Ok(Proposal::hold(&input.pool, 0.5, format!("{name} breached by {} but no step covers it", fixed(breach, 3))));
            };
            let desired = input.pool.clamp(Self::apply(current, step.adjustment, s));
            return Ok(Proposal::new(
                desired,
                1.0,
                format!(
                    "{} {} breaches {name} threshold {} by {}: adjust {} -> {}",
                    s.metric,
                    fixed(value, 3),
                    num(alarm.threshold),
                    fixed(breach, 3),
                    num(step.adjustment),
                    num(desired)
                ),
            ));
        }
        Ok(Proposal::hold(&input.pool, 1.0, format!("{} {} breaches no alarm", s.metric, fixed(value, 3))))
    }
}

export_strategy!(StepScaling);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::{run_strategy, validate_strategy};

    const SETTINGS: &str = r#"{
        "metric": "cpu", "statistic": "last",
        "scale_out": {"threshold": 0.6, "steps": [
            {"lower": 0.0, "upper": 0.2, "adjustment": 1},
            {"lower": 0.2, "adjustment": 3}]},
        "scale_in": {"threshold": 0.3, "steps": [{"upper": 0.0, "adjustment": -1}]}
    }"#;

    fn run(running: u32, cpu: f64, settings: &str) -> Proposal {
        let input = StrategyInput {
            pool: Pool { id: "p".into(), running, booting: 0, min: 1, max: 10 },
            metrics: vec![MetricWindow::new("cpu", vec![Sample { at: 0, value: cpu }])],
            now: 0,
            settings: settings.into(),
            ..Default::default()
        };
        run_strategy::<StepScaling>(&input).unwrap().proposal
    }

    #[test]
    fn picks_the_step_by_breach_size() {
        assert_eq!(run(4, 0.7, SETTINGS).desired, 5.0);
        assert_eq!(run(4, 0.95, SETTINGS).desired, 7.0);
        assert_eq!(run(4, 0.1, SETTINGS).desired, 3.0);
        assert_eq!(run(4, 0.5, SETTINGS).desired, 4.0);
        assert_eq!(run(9, 0.95, SETTINGS).desired, 10.0, "max bound");
    }

    #[test]
    fn percent_changes_respect_min_magnitude() {
        let s = r#"{"metric":"cpu","statistic":"last","adjustment_type":"percent_change_in_capacity",
            "min_adjustment_magnitude": 2,
            "scale_out":{"threshold":0.5,"steps":[{"lower":0,"adjustment":10}]}}"#;
        // 10% of 4 is 0.4, below the minimum magnitude of 2.
        assert_eq!(run(4, 0.9, s).desired, 6.0);
    }

    #[test]
    fn rejects_overlapping_steps() {
        let s = r#"{"metric":"cpu","scale_out":{"threshold":0.5,"steps":[
            {"lower":0,"upper":0.3,"adjustment":1},{"lower":0.2,"adjustment":2}]}}"#;
        let err = validate_strategy::<StepScaling>(s).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
        assert!(validate_strategy::<StepScaling>(r#"{"metric":"cpu"}"#).is_err());
        assert!(validate_strategy::<StepScaling>(SETTINGS).is_ok());
    }
}
