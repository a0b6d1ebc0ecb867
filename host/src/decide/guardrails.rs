//! The guardrails: what stands between a decision and the infrastructure.
//!
//! Pure functions of the proposed capacity, the pool's bounds, the clock
//! reading passed in and [`GuardState`] (what the journal keeps between
//! ticks and across restarts). Each rule that changes the number records a
//! [`Clamp`] saying which rule, from what, to what and why, so a decision
//! can always be explained. The rules follow the Kubernetes HPA's behavior
//! section where it has one: tolerance, stabilization windows (scale down to
//! the highest recommendation of the window), and step policies (at most N
//! members or P percent per period, the most permissive policy winning).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Members,
    Percent,
}

/// At most `value` members (or percent of the current capacity) per `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLimit {
    #[serde(rename = "type")]
    pub kind: StepKind,
    pub value: f64,
    pub period_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guardrails {
    /// A change smaller than this fraction of the current capacity is ignored.
    pub tolerance: f64,
    pub scale_up_cooldown_secs: u64,
    pub scale_down_cooldown_secs: u64,
    /// Scale down only to the highest recommendation of this window.
    pub scale_down_stabilization_secs: u64,
    pub scale_up_limits: Vec<StepLimit>,
    pub scale_down_limits: Vec<StepLimit>,
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            scale_up_cooldown_secs: 0,
            scale_down_cooldown_secs: 60,
            scale_down_stabilization_secs: 300,
            scale_up_limits: vec![
                StepLimit { kind: StepKind::Percent, value: 100.0, period_secs: 15 },
                StepLimit { kind: StepKind::Members, value: 4.0, period_secs: 15 },
            ],
            scale_down_limits: vec![StepLimit { kind: StepKind::Percent, value: 100.0, period_secs: 15 }],
        }
    }
}

/// One rule changing the number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clamp {
    pub guardrail: String,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// A scaling action taken, as the guardrails need to remember it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaled {
    pub at: i64,
    pub from: u32,
    pub to: u32,
}

/// What the guardrails remember between ticks; persisted by the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    /// Recommendations (time, members) that may still be the highest of the
    /// stabilization window, oldest (and highest) first.
    pub recommendations: VecDeque<(i64, u32)>,
    /// Recent actions, newest last, for cooldowns and step limits.
    pub actions: VecDeque<Scaled>,
    /// An action started and not yet confirmed finished.
    pub in_flight: Option<Scaled>,
}

const HOUR_MS: i64 = 3_600_000;

impl GuardState {
    pub fn last_up(&self) -> Option<&Scaled> {
        self.actions.iter().rev().find(|a| a.to > a.from)
    }
    pub fn last_down(&self) -> Option<&Scaled> {
        self.actions.iter().rev().find(|a| a.to < a.from)
    }

    /// Remember an action; forget what no rule can look back to.
    pub fn record_action(&mut self, a: Scaled) {
        self.actions.push_back(a);
        while self.actions.front().is_some_and(|x| x.at < a.at - HOUR_MS) && self.actions.len() > 1 {
            self.actions.pop_front();
        }
    }
}

/// Round a fractional desired capacity up, the way HPA does, ignoring
/// floating-point dust (4.0000001 is 4).
pub fn round_desired(desired: f64) -> u32 {
    if !desired.is_finite() || desired <= 0.0 {
        return 0;
    }
    (desired - 1e-6).ceil().clamp(0.0, u32::MAX as f64) as u32
}

/// Where the guardrails take a proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    pub desired: u32,
    pub clamps: Vec<Clamp>,
}

/// Apply every rule, in order: bounds, tolerance, stabilization, step limits,
/// cooldowns, one action in flight. Updates the recommendation history.
pub fn apply(g: &Guardrails, state: &mut GuardState, now: i64, current: u32, min: u32, max: u32, proposed: u32) -> Guarded {
    let mut clamps = Vec::new();
    let mut d = proposed;
    let set = |clamps: &mut Vec<Clamp>, d: &mut u32, to: u32, rule: &str, reason: String| {
        if to != *d {
            clamps.push(Clamp { guardrail: rule.into(), from: *d, to, reason });
            *d = to;
        }
    };
    let bounded = d.clamp(min, max.max(min));
    set(&mut clamps, &mut d, bounded, "bounds", format!("the pool holds {min} to {max} members"));

    if current > 0 && d != current && current >= min && current <= max {
        let change = (d as f64 / current as f64 - 1.0).abs();
        if change <= g.tolerance + 1e-9 {
            set(&mut clamps, &mut d, current, "tolerance", format!("a {:.0}% change is within the {:.0}% tolerance", change * 100.0, g.tolerance * 100.0));
        }
    }

    // Stabilization: scale down only to the highest recommendation of the
    // window. The history is a sliding-window maximum: a recommendation
    // that a later, higher one outlives can never be the highest again, so
    // it is dropped, and what is kept (and journalled every tick) stays
    // short however long the window.
    let window = g.scale_down_stabilization_secs as i64 * 1000;
    while state.recommendations.back().is_some_and(|(_, r)| *r <= d) {
        state.recommendations.pop_back();
    }
    state.recommendations.push_back((now, d));
    while state.recommendations.front().is_some_and(|(t, _)| *t < now - window) {
        state.recommendations.pop_front();
    }
    if d < current {
        let highest = state.recommendations.front().map_or(d, |(_, r)| *r).min(current);
        set(&mut clamps, &mut d, highest, "scale_down_stabilization", format!("the highest recommendation of the last {}s was {highest}", g.scale_down_stabilization_secs));
    }

    // Step limits: how far the pool may move from where it was at the start
    // of each period.
    let limits = if d > current { &g.scale_up_limits } else { &g.scale_down_limits };
    if d != current && !limits.is_empty() {
        let allowed = limits
            .iter()
            .map(|l| {
                let since = now - l.period_secs as i64 * 1000;
                // Capacity at the start of the period: undo the actions since.
                let base = state.actions.iter().rev().take_while(|a| a.at > since).last().map_or(current, |a| a.from);
                let step = match l.kind {
                    StepKind::Members => l.value.max(0.0).floor() as u32,
                    StepKind::Percent => ((base as f64 * l.value / 100.0).ceil() as u32).max(1),
                };
                if d > current { base.saturating_add(step) } else { base.saturating_sub(step) }
            });
        let bound = if d > current { allowed.max().unwrap() } else { allowed.min().unwrap() };
        let limited = if d > current { d.min(bound.max(current)) } else { d.max(bound.min(current)) };
        let rule = if d > current { "scale_up_limit" } else { "scale_down_limit" };
        set(&mut clamps, &mut d, limited, rule, "the step limit per period".into());
    }

    let in_cooldown = |last: Option<&Scaled>, secs: u64| last.is_some_and(|a| now < a.at + secs as i64 * 1000);
    if d > current && in_cooldown(state.last_up(), g.scale_up_cooldown_secs) {
        let until = state.last_up().unwrap().at + g.scale_up_cooldown_secs as i64 * 1000;
        set(&mut clamps, &mut d, current, "scale_up_cooldown", format!("the last scale-up was less than {}s ago ({}s left)", g.scale_up_cooldown_secs, (until - now + 999) / 1000));
    }
    if d < current && in_cooldown(state.last_down().or(state.last_up()), g.scale_down_cooldown_secs) {
        set(&mut clamps, &mut d, current, "scale_down_cooldown", format!("the last action was less than {}s ago", g.scale_down_cooldown_secs));
    }
    if d != current
        && let Some(f) = state.in_flight {
            set(&mut clamps, &mut d, current, "in_flight", format!("the action {} → {} has not finished", f.from, f.to));
        }
    Guarded { desired: d, clamps }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Guardrails {
        Guardrails { tolerance: 0.0, scale_up_cooldown_secs: 0, scale_down_cooldown_secs: 0, scale_down_stabilization_secs: 0, scale_up_limits: vec![], scale_down_limits: vec![] }
    }

    fn rules(c: &Guarded) -> Vec<&str> {
        c.clamps.iter().map(|c| c.guardrail.as_str()).collect()
    }

    #[test]
    fn bounds_and_tolerance() {
        let mut s = GuardState::default();
        let g = Guardrails { tolerance: 0.1, ..quiet() };
        let r = apply(&g, &mut s, 0, 10, 2, 20, 50);
        assert_eq!((r.desired, rules(&r)), (20, vec!["bounds"]));
        let r = apply(&g, &mut s, 0, 10, 2, 20, 11);
        assert_eq!((r.desired, rules(&r)), (10, vec!["tolerance"]));
        let r = apply(&g, &mut s, 0, 10, 2, 20, 12);
        assert_eq!(r.desired, 12);
    }

    #[test]
    fn stabilization_keeps_the_window_high() {
        let mut s = GuardState::default();
        let g = Guardrails { scale_down_stabilization_secs: 60, ..quiet() };
        assert_eq!(apply(&g, &mut s, 0, 10, 1, 100, 10).desired, 10);
        let r = apply(&g, &mut s, 30_000, 10, 1, 100, 4);
        assert_eq!((r.desired, rules(&r)), (10, vec!["scale_down_stabilization"]));
        // Past the window, the high recommendation has aged out.
        assert_eq!(apply(&g, &mut s, 61_000, 10, 1, 100, 4).desired, 4);
    }

    #[test]
    fn step_limits_count_actions_in_the_period() {
        let mut s = GuardState::default();
        let g = Guardrails { scale_up_limits: vec![StepLimit { kind: StepKind::Members, value: 2.0, period_secs: 60 }], ..quiet() };
        assert_eq!(apply(&g, &mut s, 0, 4, 1, 100, 10).desired, 6);
        s.record_action(Scaled { at: 0, from: 4, to: 6 });
        let r = apply(&g, &mut s, 10_000, 6, 1, 100, 10);
        assert_eq!((r.desired, rules(&r)), (6, vec!["scale_up_limit"]), "the period's 2 members are spent");
        assert_eq!(apply(&g, &mut s, 70_000, 6, 1, 100, 10).desired, 8);
        // Percent: 50% of 10 is 5, and the most permissive policy wins.
        let g = Guardrails {
            scale_down_limits: vec![StepLimit { kind: StepKind::Percent, value: 50.0, period_secs: 60 }, StepLimit { kind: StepKind::Members, value: 1.0, period_secs: 60 }],
            ..quiet()
        };
        assert_eq!(apply(&g, &mut GuardState::default(), 0, 10, 1, 100, 1).desired, 5);
    }

    #[test]
    fn cooldowns_and_in_flight() {
        let mut s = GuardState::default();
        let g = Guardrails { scale_up_cooldown_secs: 30, scale_down_cooldown_secs: 120, ..quiet() };
        s.record_action(Scaled { at: 0, from: 2, to: 4 });
        let r = apply(&g, &mut s, 10_000, 4, 1, 100, 8);
        assert_eq!((r.desired, rules(&r)), (4, vec!["scale_up_cooldown"]));
        assert!(r.clamps[0].reason.contains("20s left"), "{:?}", r.clamps);
        assert_eq!(apply(&g, &mut s, 31_000, 4, 1, 100, 8).desired, 8);
        let r = apply(&g, &mut s, 60_000, 4, 1, 100, 2);
        assert_eq!(rules(&r), vec!["scale_down_cooldown"]);
        s.in_flight = Some(Scaled { at: 100_000, from: 4, to: 6 });
        let r = apply(&g, &mut s, 200_000, 4, 1, 100, 8);
        assert_eq!((r.desired, rules(&r)), (4, vec!["in_flight"]));
    }

    #[test]
    fn rounding_ignores_dust() {
        assert_eq!(round_desired(4.0000001), 4);
        assert_eq!(round_desired(4.2), 5);
        assert_eq!(round_desired(f64::NAN), 0);
        assert_eq!(round_desired(-3.0), 0);
    }
}
