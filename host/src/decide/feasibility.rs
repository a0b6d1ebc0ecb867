//! Feasibility: a scale-up only as far as the target can hold it.
//!
//! Why a stage of its own rather than a cost rule or a strategy: what fits
//! is a fact about the infrastructure, not an opinion. A strategy such as
//! `gpu-memory` may already vote with it in mind, but a consensus of other
//! experts, or an operator's `min`, can still ask for more than the machine
//! holds; launching those members only produces crash loops (out of memory)
//! or provider errors (quota). So after the cost rules, the pipeline cuts a
//! scale-up to the tightest of:
//!
//! - what the target says it can hold ([`Headroom`]: host memory and CPU for
//!   the local pool, an account quota for a cloud or the simulator), and
//! - each [`MetricLimit`] of the pool: a metric of free resource (free GPU
//!   memory from `nvml`, anything pushed or queried) divided by what one
//!   member needs, after a reserve, less the members still booting (they
//!   have not taken their share yet, so the metric does not show it).
//!
//! It never scales down (a pool already over a limit stays as it is; a
//! limit is no reason to kill serving members), and the decision says it
//! was limited, to what, and why.

use scalewise_sdk::MetricWindow;
use serde::{Deserialize, Serialize};

pub use scalewise_providers::Headroom;

use super::record::Limited;

/// A limit read from a metric of free resource: the pool may grow by
/// `floor((latest − reserve) / per_member) − booting` members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricLimit {
    /// The pool metric holding the free amount (it must be one of the
    /// pool's `metrics`).
    pub metric: String,
    /// What one more member takes of it.
    pub per_member: f64,
    /// What must stay free.
    #[serde(default)]
    pub reserve: f64,
    /// What the resource is called in decisions; the metric's name if unset.
    #[serde(default)]
    pub label: Option<String>,
}

impl MetricLimit {
    /// The most members the pool may hold, by this limit; `None` when the
    /// metric has no sample (an unknown limit does not block: the metric's
    /// own reading in the decision shows it missing).
    fn at_most(&self, metrics: &[MetricWindow], current: u32, booting: u32) -> Option<Headroom> {
        let free = metrics.iter().find(|m| m.name == self.metric)?.last()?;
        let fit = ((free - self.reserve) / self.per_member).floor().max(0.0);
        let fit = if fit.is_finite() { fit.min(f64::from(u32::MAX)) as u32 } else { 0 };
        let more = fit.saturating_sub(booting);
        let label = self.label.as_deref().unwrap_or(&self.metric);
        let pending = if booting > 0 { format!(", {booting} booting not counted in it yet") } else { String::new() };
        Some(Headroom {
            at_most: current.saturating_add(more),
            why: format!("{label}: {free:.1} free, {:.1} kept in reserve, {:.1} per member{pending}: {more} more fit", self.reserve, self.per_member),
        })
    }
}

/// Cut `proposed` to the tightest limit, if it is a scale-up that does not
/// fit; `None` when nothing had to be cut.
pub fn limit(target: Option<Headroom>, limits: &[MetricLimit], metrics: &[MetricWindow], current: u32, booting: u32, proposed: u32) -> Option<Limited> {
    if proposed <= current {
        return None;
    }
    let tightest = target
        .into_iter()
        .chain(limits.iter().filter_map(|l| l.at_most(metrics, current, booting)))
        .min_by_key(|h| h.at_most)?;
    (tightest.at_most < proposed).then(|| Limited { wanted: proposed, to: tightest.at_most.max(current), why: tightest.why })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::Sample;

    fn window(name: &str, v: f64) -> MetricWindow {
        MetricWindow::new(name, vec![Sample { at: 0, value: v }])
    }

    fn gpu() -> MetricLimit {
        MetricLimit { metric: "gpu_free_gib".into(), per_member: 14.0, reserve: 2.0, label: Some("GPU memory".into()) }
    }

    #[test]
    fn the_tightest_limit_cuts_a_scale_up() {
        let metrics = [window("gpu_free_gib", 44.0)];
        // 42 usable GiB / 14 = 3 more on top of 2.
        let l = limit(None, &[gpu()], &metrics, 2, 0, 9).unwrap();
        assert_eq!((l.wanted, l.to), (9, 5));
        assert!(l.why.starts_with("GPU memory: 44.0 free"), "{}", l.why);
        // Two of the pool still booting have not taken their memory yet.
        let l = limit(None, &[gpu()], &metrics, 4, 2, 9).unwrap();
        assert_eq!(l.to, 5, "{}", l.why);
        assert!(l.why.contains("2 booting not counted in it yet: 1 more fit"), "{}", l.why);
        // The target's headroom is tighter.
        let quota = Headroom { at_most: 4, why: "quota".into() };
        assert_eq!(limit(Some(quota.clone()), &[gpu()], &metrics, 2, 0, 9).unwrap().why, "quota");
        // What fits is not cut; a scale-down is never touched.
        assert_eq!(limit(Some(quota.clone()), &[gpu()], &metrics, 2, 0, 4), None);
        assert_eq!(limit(Some(quota), &[gpu()], &metrics, 6, 0, 3), None);
    }

    #[test]
    fn over_a_limit_already_means_hold_not_shrink() {
        let l = limit(None, &[gpu()], &[window("gpu_free_gib", 1.0)], 5, 0, 8).unwrap();
        assert_eq!(l.to, 5);
    }

    #[test]
    fn a_missing_metric_does_not_block() {
        assert_eq!(limit(None, &[gpu()], &[], 2, 0, 9), None);
        assert_eq!(limit(None, &[gpu()], &[MetricWindow::new("gpu_free_gib", vec![])], 2, 0, 9), None);
    }
}
