//! Replaying a pool's history as Prometheus kept it: the serving set and a
//! candidate decide at every step of a span on the metric windows and the
//! capacity Prometheus recorded, beside the desired capacity the host
//! exported (`scalewise simulate --from-prometheus`).
//!
//! Why beside the journal replay: a journal holds the pool's own record,
//! exactly, for as long as its retention; Prometheus often holds weeks, for
//! every host that it scrapes, and a pool whose journal was lost or never
//! kept inputs. What it holds is coarser: values at the scrape resolution,
//! not the samples the policies saw. So this replay reports how often the
//! serving set *agrees* with what the pool decided, not that it reproduces
//! it, and each set decides from memory of its own (its cooldowns count the
//! actions it would have taken), since the pool's memory is not in
//! Prometheus.
//!
//! The series, each one range query at the step over the span (the command
//! fetches them; this module only replays):
//! - each metric of the pool: its own query where its source is a
//!   Prometheus, else what the host exported of it
//!   (`scalewise_pool_metric{pool, metric}`);
//! - the capacity: `scalewise_pool_capacity{pool, state="running"|"booting"}`;
//! - what the pool decided: `scalewise_pool_desired_capacity{pool}`.

use scalewise_sdk::{MetricWindow, Sample};

use super::{CandidateSummary, ReplaySet, ReplaySummary, Skipped, Step};
use crate::decide::guardrails::Scaled;
use crate::decide::memory::PoolMemory;
use crate::decide::pipeline::{self, TickInput};
use crate::decide::record::{MetricReading, Mode};

/// One metric's history and the window the pool reads of it.
#[derive(Debug, Clone)]
pub struct MetricHistory {
    pub name: String,
    pub window_ms: i64,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

/// What Prometheus kept of a pool over a span.
#[derive(Debug, Clone, Default)]
pub struct PoolHistory {
    pub start: i64,
    pub end: i64,
    pub step_ms: i64,
    pub metrics: Vec<MetricHistory>,
    pub running: Vec<Sample>,
    pub booting: Vec<Sample>,
    pub desired: Vec<Sample>,
}

/// The newest sample at or before `t`.
fn at(samples: &[Sample], t: i64) -> Option<f64> {
    let i = samples.partition_point(|s| s.at <= t);
    i.checked_sub(1).map(|i| samples[i].value)
}

fn whole(v: f64) -> u32 {
    if v.is_finite() && v > 0.0 { v.round().min(f64::from(u32::MAX)) as u32 } else { 0 }
}

/// A set deciding from memory of its own.
struct Free<'a> {
    set: &'a ReplaySet<'a>,
    memory: PoolMemory,
}

impl Free<'_> {
    fn decide(&mut self, now: i64, running: u32, booting: u32, metrics: &[MetricWindow]) -> u32 {
        let readings = metrics.iter().map(|m| MetricReading { name: m.name.clone(), samples: m.times().len(), last: m.last(), error: None }).collect();
        let input = TickInput { plan: self.set.plan, now, mode: Mode::Live, running, booting, metrics: metrics.to_vec(), readings, recent: self.memory.guard.recent(), headroom: None, advice: None };
        let r = pipeline::decide(self.set.experts, input, &mut self.memory);
        let current = running + booting;
        if r.desired != current {
            // As if it had acted: its own cooldowns and step limits count it.
            self.memory.guard.record_action(Scaled { at: now, from: current, to: r.desired });
        }
        r.desired
    }
}

/// Replay `history` with `serving` and, if given, `candidate`, calling
/// `step` for each step, oldest first.
pub fn replay(pool: &str, history: &PoolHistory, serving: &ReplaySet<'_>, candidate: Option<&ReplaySet<'_>>, mut step: impl FnMut(&Step)) -> ReplaySummary {
    let mut summary = ReplaySummary { pool: pool.into(), candidate: candidate.map(|_| CandidateSummary::default()), ..Default::default() };
    let mut serve = Free { set: serving, memory: PoolMemory::default() };
    let mut cand = candidate.map(|set| Free { set, memory: PoolMemory::default() });
    let mut abs_sum = 0.0;
    let mut previous: Option<(i64, u32, Option<u32>)> = None;
    let step_ms = history.step_ms.max(1);
    let mut seq = 0u64;
    let mut t = history.start;
    while t <= history.end {
        seq += 1;
        summary.records += 1;
        let Some(running) = at(&history.running, t) else {
            if summary.skipped_first.len() < 20 {
                summary.skipped_first.push(Skipped { seq, why: format!("no capacity recorded at or before {} yet", crate::decide::budget::rfc3339(t)) });
            }
            summary.skipped += 1;
            t += step_ms;
            continue;
        };
        let (running, booting) = (whole(running), at(&history.booting, t).map_or(0, whole));
        let windows: Vec<MetricWindow> = history
            .metrics
            .iter()
            .map(|m| {
                let from = m.samples.partition_point(|s| s.at <= t - m.window_ms);
                let to = m.samples.partition_point(|s| s.at <= t);
                MetricWindow::new(m.name.clone(), m.samples[from..to].to_vec())
            })
            .collect();
        let replayed = serve.decide(t, running, booting, &windows);
        let candidate = cand.as_mut().map(|c| c.decide(t, running, booting, &windows));
        let recorded = at(&history.desired, t).map_or(running + booting, whole);
        let agreed = replayed == recorded;
        let st = Step {
            seq,
            at: t,
            mode: Mode::Live,
            running,
            booting,
            recorded,
            replayed,
            reproduced: agreed,
            differs: (!agreed).then(|| format!("the pool's exported desired capacity was {recorded}; the serving set decides {replayed} on what Prometheus kept")),
            candidate,
            shadow_recorded: None,
        };
        summary.first_seq.get_or_insert(seq);
        summary.first_at.get_or_insert(t);
        summary.last_seq = Some(seq);
        summary.last_at = Some(t);
        summary.replayed += 1;
        if agreed { summary.reproduced += 1 } else { summary.differed += 1 }
        if let (Some(c), Some(cv)) = (summary.candidate.as_mut(), candidate) {
            c.steps += 1;
            let diff = cv.abs_diff(recorded);
            c.differed += u64::from(diff > 0);
            c.higher += u64::from(cv > recorded);
            c.lower += u64::from(cv < recorded);
            c.max_abs_diff = c.max_abs_diff.max(diff);
            abs_sum += f64::from(diff);
            if let Some((at, r, Some(cp))) = previous {
                let hours = (t - at) as f64 / 3_600_000.0;
                c.recorded_member_hours += f64::from(r) * hours;
                c.candidate_member_hours += f64::from(cp) * hours;
            }
        }
        previous = Some((t, recorded, candidate));
        step(&st);
        t += step_ms;
    }
    if let Some(c) = summary.candidate.as_mut().filter(|c| c.steps > 0) {
        c.mean_abs_diff = abs_sum / c.steps as f64;
    }
    summary
}

/// The queries for a pool's running and booting members and its desired
/// capacity, as the host exports them.
pub fn capacity_queries(pool: &str) -> [(String, String); 3] {
    let p = pool.replace('\\', "\\\\").replace('"', "\\\"");
    [
        ("running".into(), format!("scalewise_pool_capacity{{pool=\"{p}\",state=\"running\"}}")),
        ("booting".into(), format!("scalewise_pool_capacity{{pool=\"{p}\",state=\"booting\"}}")),
        ("desired".into(), format!("scalewise_pool_desired_capacity{{pool=\"{p}\"}}")),
    ]
}

/// What the host exported of a pool's metric that no Prometheus serves.
pub fn exported_metric_query(pool: &str, metric: &str) -> String {
    let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("scalewise_pool_metric{{pool=\"{}\",metric=\"{}\"}}", q(pool), q(metric))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::budget::CostSpec;
    use crate::decide::guardrails::Guardrails;
    use crate::decide::pipeline::{Answer, ExpertSpec, Experts, NoAnswer, PoolPlan};
    use scalewise_sdk::{ConsensusInput, ConsensusOutput, CostInput, CostOutput, Proposal, StrategyInput, StrategyOutput};

    /// Ten per member of the newest queue value, plus `extra`.
    struct PerTen(f64);

    impl Experts for PerTen {
        fn strategy(&self, _: &str, input: &StrategyInput) -> Result<Answer<StrategyOutput>, NoAnswer> {
            let q = input.metrics[0].last().ok_or("no samples")?;
            Ok(Answer { output: StrategyOutput { proposal: Proposal::new(q / 10.0 + self.0, 1.0, "per ten"), gauges: vec![], state: None }, version: 1, fallback: None })
        }
        fn consensus(&self, _: &str, _: &ConsensusInput) -> Result<Answer<ConsensusOutput>, NoAnswer> {
            Err("not used".into())
        }
        fn cost_rule(&self, _: &str, _: &CostInput) -> Result<Answer<CostOutput>, NoAnswer> {
            Err("not used".into())
        }
    }

    fn plan() -> PoolPlan {
        PoolPlan {
            id: "web".into(),
            min: 1,
            max: 20,
            strategies: vec![ExpertSpec { policy: "per-ten".into(), weight: 1.0 }],
            consensus: None,
            cost_rules: vec![],
            cost: CostSpec::default(),
            guardrails: Guardrails { tolerance: 0.0, scale_up_cooldown_secs: 0, scale_down_cooldown_secs: 0, scale_down_stabilization_secs: 0, scale_up_limits: vec![], scale_down_limits: vec![], manual_hold_secs: 0, rollback_after_faults: 0 },
            limits: vec![],
            instances: Default::default(),
            candidate: None,
        }
    }

    fn series(points: &[(i64, f64)]) -> Vec<Sample> {
        points.iter().map(|&(at, value)| Sample { at, value }).collect()
    }

    #[test]
    fn each_step_decides_on_the_window_at_that_time_beside_what_the_pool_decided() {
        // The queue steps 30 → 70 at t=5s; the pool followed a step late.
        let queue: Vec<(i64, f64)> = (0..10).map(|s| (s * 1000, if s < 5 { 30.0 } else { 70.0 })).collect();
        let desired: Vec<(i64, f64)> = (0..10).map(|s| (s * 1000, if s < 6 { 3.0 } else { 7.0 })).collect();
        let h = PoolHistory {
            start: 2000,
            end: 9000,
            step_ms: 1000,
            metrics: vec![MetricHistory { name: "q".into(), window_ms: 3000, samples: series(&queue) }],
            running: series(&[(1000, 3.0), (6500, 7.0)]),
            booting: vec![],
            desired: series(&desired),
        };
        let plan = plan();
        let (serving, other) = (PerTen(0.0), PerTen(1.0));
        let s_set = ReplaySet { plan: &plan, experts: &serving };
        let c_set = ReplaySet { plan: &plan, experts: &other };
        let mut steps = Vec::new();
        let s = replay("web", &h, &s_set, Some(&c_set), |st| steps.push(st.clone()));
        assert_eq!(s.replayed, 8);
        let replayed: Vec<u32> = steps.iter().map(|st| st.replayed).collect();
        assert_eq!(replayed, [3, 3, 3, 7, 7, 7, 7, 7]);
        // It parts from the record only where the pool was a step late.
        assert_eq!(s.differed, 1);
        assert_eq!(steps.iter().find(|st| !st.reproduced).map(|st| st.at), Some(5000));
        let c = s.candidate.unwrap();
        assert_eq!((c.steps, c.higher), (8, 8));
    }

    #[test]
    fn steps_before_any_capacity_was_recorded_are_skipped_with_why() {
        let h = PoolHistory { start: 0, end: 3000, step_ms: 1000, running: series(&[(2000, 2.0)]), metrics: vec![MetricHistory { name: "q".into(), window_ms: 5000, samples: series(&[(0, 20.0)]) }], ..Default::default() };
        let plan = plan();
        let e = PerTen(0.0);
        let s = replay("web", &h, &ReplaySet { plan: &plan, experts: &e }, None, |_| {});
        assert_eq!((s.skipped, s.replayed), (2, 2));
        assert!(s.skipped_first[0].why.contains("no capacity recorded"), "{:?}", s.skipped_first);
    }
}
