//! Queue depth: KEDA's backlog-per-worker scaling.
//!
//! Desired capacity is `ceil(backlog / target_per_worker)`, where the backlog
//! is the newest queue-depth sample plus, optionally, the work already in
//! flight. Below the activation threshold an idle pool may scale to its
//! minimum (to zero where the pool allows it), as KEDA's activation does.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Messages one worker should have waiting for it.
    pub target_per_worker: f64,
    /// A backlog at or below this counts as no work at all.
    #[serde(default)]
    pub activation: f64,
    /// A metric counting items being processed now, added to the backlog.
    #[serde(default)]
    pub in_flight_metric: Option<String>,
}

fn default_metric() -> String {
    "queue_depth".into()
}

pub struct QueueDepth;

impl Strategy for QueueDepth {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if !(s.target_per_worker.is_finite() && s.target_per_worker > 0.0) {
            return Err(format!("target_per_worker: must be a positive number, got {}", s.target_per_worker));
        }
        if !(s.activation.is_finite() && s.activation >= 0.0) {
            return Err(format!("activation: must be zero or more, got {}", s.activation));
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let latest = |name: &str| input.metric(name).and_then(MetricWindow::last).filter(|v| v.is_finite());
        let depth = latest(&s.metric).ok_or_else(|| format!("no samples for {}", s.metric))?;
        let in_flight = s.in_flight_metric.as_deref().and_then(latest).unwrap_or(0.0);
        let backlog = (depth + in_flight).max(0.0);
        if backlog <= s.activation {
            let desired = input.pool.min as f64;
            return Ok(Proposal::new(desired, 1.0, format!("backlog {} at or below activation {}: scale to {}", num(backlog), num(s.activation), num(desired))));
        }
        let raw = (backlog / s.target_per_worker).ceil();
        let desired = input.pool.clamp(raw);
        let mut reason = format!("backlog {} / {} per worker -> {}", num(backlog), num(s.target_per_worker), num(raw));
        if desired != raw {
            reason.push_str(&format!(" (limited to {})", num(desired)));
        }
        Ok(Proposal::new(desired, 1.0, reason))
    }
}

export_strategy!(QueueDepth);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_strategy;

    fn run(depth: Option<f64>, in_flight: f64, settings: &str) -> Result<Proposal, String> {
        let mut metrics = vec![MetricWindow::new("busy", vec![Sample { at: 0, value: in_flight }])];
        if let Some(d) = depth {
            metrics.push(MetricWindow::new("queue_depth", vec![Sample { at: 0, value: d }]));
        }
        let input = StrategyInput {
            pool: Pool { id: "q".into(), running: 2, booting: 0, min: 0, max: 20 },
            metrics,
            settings: settings.into(),
            ..Default::default()
        };
        run_strategy::<QueueDepth>(&input).map(|o| o.proposal)
    }

    #[test]
    fn backlog_per_worker() {
        let s = r#"{"target_per_worker": 5}"#;
        assert_eq!(run(Some(23.0), 0.0, s).unwrap().desired, 5.0);
        assert_eq!(run(Some(1000.0), 0.0, s).unwrap().desired, 20.0);
        let s = r#"{"target_per_worker": 5, "in_flight_metric": "busy"}"#;
        assert_eq!(run(Some(23.0), 7.0, s).unwrap().desired, 6.0);
    }

    #[test]
    fn activation_scales_to_min() {
        let s = r#"{"target_per_worker": 5, "activation": 2}"#;
        assert_eq!(run(Some(2.0), 0.0, s).unwrap().desired, 0.0);
        assert_eq!(run(Some(3.0), 0.0, s).unwrap().desired, 1.0);
    }

    #[test]
    fn no_data_abstains() {
        assert!(run(None, 0.0, r#"{"target_per_worker": 5}"#).unwrap_err().contains("queue_depth"));
    }
}
