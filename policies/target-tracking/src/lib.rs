//! Target tracking: the Kubernetes Horizontal Pod Autoscaler's algorithm.
//!
//! For each tracked metric the desired capacity is
//! `ceil(current * value / target)` (for per-member averages such as CPU
//! utilisation) or `ceil(value / target)` (for pool totals such as requests
//! per second, HPA's `AverageValue`). A ratio within `tolerance` of 1 leaves
//! the capacity alone. With several metrics the largest proposal wins.
//!
//! Missing data follows HPA's caution: when a metric has no samples, the
//! policy may still scale up on the others, but never scales down, since the
//! missing metric might be the one that is hot. With no data at all it
//! abstains (returns an error, which the host records as an abstention).

use scalewise_sdk::prelude::*;

/// How a metric's value relates to capacity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A per-member average (CPU utilisation 0..1, requests per member).
    #[default]
    Average,
    /// A pool-wide total; `target` is what one member should carry.
    Total,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTarget {
    pub name: String,
    pub target: f64,
    #[serde(default)]
    pub kind: MetricKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub metrics: Vec<MetricTarget>,
    /// Ratios within this distance of 1.0 do not scale (HPA's default 0.1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The metric value is the mean over this many seconds before `now`.
    #[serde(default = "default_window")]
    pub window_secs: u32,
}

fn default_tolerance() -> f64 {
    0.1
}
fn default_window() -> u32 {
    60
}

pub struct TargetTracking;

impl Strategy for TargetTracking {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if s.metrics.is_empty() {
            return Err("metrics: list at least one metric to track".into());
        }
        for (i, m) in s.metrics.iter().enumerate() {
            if !(m.target.is_finite() && m.target > 0.0) {
                return Err(format!("metrics[{i}].target: must be a positive number, got {}", m.target));
            }
        }
        if !(0.0..1.0).contains(&s.tolerance) {
            return Err(format!("tolerance: must be in [0, 1), got {}", s.tolerance));
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let pool = &input.pool;
        let current = pool.capacity() as f64;
        let window_ms = i64::from(s.window_secs) * 1000;
        let mut best: Option<(f64, String)> = None;
        let mut missing = Vec::new();
        for m in &s.metrics {
            let Some(value) = input.metric(&m.name).and_then(|w| w.mean_since(input.now, window_ms))
            else {
                missing.push(m.name.as_str());
                continue;
            };
            let ratio = match m.kind {
                MetricKind::Average if current > 0.0 => value / m.target,
                MetricKind::Average => if value > 0.0 { f64::INFINITY } else { 1.0 },
                MetricKind::Total if current > 0.0 => value / (m.target * current),
                MetricKind::Total => if value > 0.0 { f64::INFINITY } else { 1.0 },
            };
            let (desired, why) = if (ratio - 1.0).abs() <= s.tolerance {
                (current, format!("{} {} is within {}% of target {}", m.name, fixed(value, 3), fixed(s.tolerance * 100.0, 0), num(m.target)))
            } else {
                let desired = match m.kind {
                    MetricKind::Average if current > 0.0 => (current * ratio).ceil(),
                    MetricKind::Total => (value / m.target).ceil(),
                    MetricKind::Average => 1.0,
                };
                (desired, format!("{} {} vs target {} -> {}", m.name, fixed(value, 3), num(m.target), num(desired)))
            };
            if best.as_ref().is_none_or(|(d, _)| desired > *d) {
                best = Some((desired, why));
            }
        }
        let Some((mut desired, mut reason)) = best else {
            return Err(format!("no samples for {} in the last {}s", missing.join(", "), s.window_secs));
        };
        let mut confidence = 1.0;
        if !missing.is_empty() {
            confidence = 0.5;
            if desired < current {
                desired = current;
                reason = format!("{reason}; not scaling down while {} has no data", missing.join(", "));
            }
        }
        let clamped = pool.clamp(desired);
        if clamped != desired {
            reason = format!("{reason} (limited to [{}, {}])", pool.min, pool.max);
        }
        Ok(Proposal::new(clamped, confidence, reason))
    }
}

export_strategy!(TargetTracking);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_strategy;

    fn input(running: u32, metrics: &[(&str, &[f64])], settings: &str) -> StrategyInput {
        StrategyInput {
            pool: Pool { id: "web".into(), running, booting: 0, min: 1, max: 50 },
            metrics: metrics
                .iter()
                .map(|(n, vs)| MetricWindow::new(*n, vs.iter().enumerate().map(|(i, v)| Sample { at: i as i64 * 1000, value: *v }).collect()))
                .collect(),
            now: 10_000,
            settings: settings.into(),
            ..Default::default()
        }
    }

    const CPU: &str = r#"{"metrics":[{"name":"cpu","target":0.5}]}"#;

    fn desired(i: &StrategyInput) -> f64 {
        run_strategy::<TargetTracking>(i).unwrap().proposal.desired
    }

    #[test]
    fn follows_the_hpa_formula() {
        // 4 members at 90% with a 50% target: ceil(4 * 0.9 / 0.5) = ceil(7.2) = 8.
        assert_eq!(desired(&input(4, &[("cpu", &[0.9, 0.9])], CPU)), 8.0);
        // 10 members at 20%: ceil(10 * 0.4) = 4.
        assert_eq!(desired(&input(10, &[("cpu", &[0.2])], CPU)), 4.0);
    }

    #[test]
    fn tolerance_holds_near_target() {
        assert_eq!(desired(&input(4, &[("cpu", &[0.54])], CPU)), 4.0);
        assert_eq!(desired(&input(4, &[("cpu", &[0.46])], CPU)), 4.0);
    }

    #[test]
    fn total_metrics_divide_by_per_member_target() {
        let s = r#"{"metrics":[{"name":"rps","target":100,"kind":"total"}]}"#;
        assert_eq!(desired(&input(2, &[("rps", &[950.0])], s)), 10.0);
    }

    #[test]
    fn largest_metric_wins_and_bounds_apply() {
        let s = r#"{"metrics":[{"name":"cpu","target":0.5},{"name":"mem","target":0.5}]}"#;
        assert_eq!(desired(&input(4, &[("cpu", &[0.25]), ("mem", &[1.0])], s)), 8.0);
        assert_eq!(desired(&input(40, &[("cpu", &[1.0])], CPU)), 50.0);
    }

    #[test]
    fn missing_metric_blocks_scale_down_but_not_up() {
        let s = r#"{"metrics":[{"name":"cpu","target":0.5},{"name":"mem","target":0.5}]}"#;
        let down = run_strategy::<TargetTracking>(&input(10, &[("cpu", &[0.1])], s)).unwrap();
        assert_eq!(down.proposal.desired, 10.0);
        assert!(down.proposal.reason.contains("mem has no data"), "{}", down.proposal.reason);
        assert_eq!(desired(&input(2, &[("cpu", &[1.0])], s)), 4.0);
        let err = run_strategy::<TargetTracking>(&input(2, &[], s)).unwrap_err();
        assert!(err.contains("no samples for cpu, mem"), "{err}");
    }

    #[test]
    fn rejects_bad_settings() {
        use scalewise_sdk::validate_strategy;
        assert!(validate_strategy::<TargetTracking>(r#"{"metrics":[]}"#).unwrap_err().contains("at least one"));
        assert!(validate_strategy::<TargetTracking>(r#"{"metrics":[{"name":"cpu","target":0}]}"#)
            .unwrap_err()
            .contains("metrics[0].target"));
    }
}
