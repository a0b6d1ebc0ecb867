//! {{name}}: a scaling strategy. Desired capacity is the newest sample of a
//! metric divided by what one worker should carry.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_metric")]
    pub metric: String,
    /// What one worker should carry.
    pub target_per_worker: f64,
}

fn default_metric() -> String {
    "queue_depth".into()
}

pub struct Policy;

impl Strategy for Policy {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if !(s.target_per_worker.is_finite() && s.target_per_worker > 0.0) {
            return Err(format!("target_per_worker: must be a positive number, got {}", s.target_per_worker));
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let value = input.metric(&s.metric).and_then(MetricWindow::last).ok_or_else(|| format!("no samples for {}", s.metric))?;
        let desired = input.pool.clamp((value / s.target_per_worker).ceil());
        Ok(Proposal::new(desired, 1.0, format!("{} {} / {} per worker", s.metric, num(value), num(s.target_per_worker))))
    }
}

export_strategy!(Policy);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_strategy;

    fn input(value: f64, settings: &str) -> StrategyInput {
        StrategyInput {
            pool: Pool { id: "p".into(), running: 2, booting: 0, min: 1, max: 20 },
            metrics: vec![MetricWindow::new("queue_depth", vec![Sample { at: 0, value }])],
            settings: settings.into(),
            ..Default::default()
        }
    }

    #[test]
    fn divides_by_the_target_and_stays_in_bounds() {
        let s = r#"{"target_per_worker": 10}"#;
        assert_eq!(run_strategy::<Policy>(&input(95.0, s)).unwrap().proposal.desired, 10.0);
        assert_eq!(run_strategy::<Policy>(&input(1e6, s)).unwrap().proposal.desired, 20.0);
    }

    #[test]
    fn bad_settings_name_the_field() {
        assert!(scalewise_sdk::validate_strategy::<Policy>(r#"{"target_per_worker": 0}"#).unwrap_err().contains("target_per_worker"));
    }
}
