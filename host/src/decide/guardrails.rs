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
//!
//! Where scalewise goes beyond HPA, it says so:
//! - An operator's manual scale *holds* for a stated time (HPA overwrites
//!   a manual change at its next sync). During the hold the policies still
//!   vote and are recorded, and the decision's `manual_hold` clamp says why
//!   they did not move the pool. The manual target also counts as a
//!   recommendation for stabilization, so the pool does not drop from a
//!   manual 12 to 1 the moment a hold ends.
//! - Cooldowns (HPA has none; these are the EC2 Auto Scaling kind): no
//!   scale-up within `scale_up_cooldown_secs` of the last scale-up, and no
//!   scale-down within `scale_down_cooldown_secs` of the last action in
//!   *either* direction. Manual and approved actions count.

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
    /// No scale-up within this long of the last scale-up (by a policy or an operator).
    pub scale_up_cooldown_secs: u64,
    /// No scale-down within this long of the last action, up or down.
    pub scale_down_cooldown_secs: u64,
    /// Scale down only to the highest recommendation of this window
    /// (manual targets count as recommendations).
    pub scale_down_stabilization_secs: u64,
    pub scale_up_limits: Vec<StepLimit>,
    pub scale_down_limits: Vec<StepLimit>,
    /// How long a manual scale holds when its request gives no `hold_secs`.
    pub manual_hold_secs: u64,
    /// After a promotion, roll back by itself once the promoted set has
    /// faulted (a trap, a timeout, nonsense, not loaded; not a decline) on
    /// this many live ticks running. 0: never by itself.
    pub rollback_after_faults: u32,
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
            manual_hold_secs: 300,
            rollback_after_faults: 0,
        }
    }
}

/// One rule changing the number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// The longest a manual scale may hold: a week.
pub const MAX_HOLD_SECS: u64 = 7 * 24 * 3600;

/// An operator's target, held against the policies until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hold {
    pub target: u32,
    pub since: i64,
    pub until: i64,
}

/// What the guardrails remember between ticks; persisted by the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    /// A manual scale's hold, while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
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
    /// The last action in either direction.
    pub fn last_action(&self) -> Option<&Scaled> {
        self.actions.iter().rev().find(|a| a.to != a.from)
    }

    /// Count `members` as a recommendation at `now`, for a stabilization
    /// window of `window_ms`. The history is a sliding-window maximum: a
    /// recommendation that a later, higher one outlives can never be the
    /// highest again, so it is dropped, and what is kept (and journalled
    /// every tick) stays short however long the window.
    pub fn recommend(&mut self, now: i64, members: u32, window_ms: i64) {
        while self.recommendations.back().is_some_and(|(_, r)| *r <= members) {
            self.recommendations.pop_back();
        }
        self.recommendations.push_back((now, members));
        while self.recommendations.front().is_some_and(|(t, _)| *t < now - window_ms) {
            self.recommendations.pop_front();
        }
    }

    /// An operator set `target` at `now`: it counts as a recommendation,
    /// and holds for `hold_secs` (0: no hold, and any earlier hold ends).
    pub fn manual(&mut self, g: &Guardrails, now: i64, target: u32, hold_secs: u64) {
        self.recommend(now, target, g.scale_down_stabilization_secs as i64 * 1000);
        self.hold = (hold_secs > 0).then(|| Hold { target, since: now, until: now.saturating_add(hold_secs as i64 * 1000) });
    }

    /// The recent actions as the policies are given them.
    pub fn recent(&self) -> Vec<scalewise_sdk::Action> {
        self.actions.iter().map(|a| scalewise_sdk::Action { at: a.at, from: a.from, to: a.to, reason: String::new() }).collect()
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

/// Apply every rule, in order: bounds, a manual hold (which skips the
/// rules after it but the last), tolerance, stabilization, step limits,
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
    let window = g.scale_down_stabilization_secs as i64 * 1000;

    if let Some(h) = state.hold.clone() {
        if now < h.until {
            let target = h.target.clamp(min, max.max(min));
            // Said even when the policies agree: the hold, not they, sets the number.
            clamps.push(Clamp {
                guardrail: "manual_hold".into(),
                from: d,
                to: target,
                reason: format!(
                    "an operator set {} {}s ago, held for {}s more; the policies' {d} is recorded, not acted on",
                    h.target,
                    (now - h.since) / 1000,
                    (h.until - now + 999) / 1000
                ),
            });
            d = target;
            state.recommend(now, d, window);
            return in_flight(state, current, d, clamps);
        }
        state.hold = None;
    }

    if current > 0 && d != current && current >= min && current <= max {
        let change = (d as f64 / current as f64 - 1.0).abs();
        if change <= g.tolerance + 1e-9 {
            set(&mut clamps, &mut d, current, "tolerance", format!("a {:.0}% change is within the {:.0}% tolerance", change * 100.0, g.tolerance * 100.0));
        }
    }

    // Stabilization: scale down only to the highest recommendation of the window.
    state.recommend(now, d, window);
    if d < current {
        let highest = state.recommendations.front().map_or(d, |(_, r)| *r).min(current);
        set(&mut clamps, &mut d, highest, "scale_down_stabilization", format!("the highest recommendation of the last {}s was {highest}", g.scale_down_stabilization_secs));
    }

    // Step limits: how far the pool may move from where it was at the start
    // of each period.
    let up = d > current;
    let (limits, field) = if up { (&g.scale_up_limits, "scale_up_limits") } else { (&g.scale_down_limits, "scale_down_limits") };
    if d != current && !limits.is_empty() {
        let allowed = limits.iter().map(|l| {
            let since = now - l.period_secs as i64 * 1000;
            // Capacity at the start of the period: undo the actions since.
            let base = state.actions.iter().rev().take_while(|a| a.at > since).last().map_or(current, |a| a.from);
            let step = match l.kind {
                StepKind::Members => l.value.max(0.0).floor() as u32,
                StepKind::Percent => ((base as f64 * l.value / 100.0).ceil() as u32).max(1),
            };
            (if up { base.saturating_add(step) } else { base.saturating_sub(step) }, base)
        });
        // The most permissive limit is the one that applies.
        let (i, (bound, base)) = if up { allowed.enumerate().max_by_key(|(_, (b, _))| *b) } else { allowed.enumerate().min_by_key(|(_, (b, _))| *b) }.expect("limits");
        let limited = if up { d.min(bound.max(current)) } else { d.max(bound.min(current)) };
        let l = &limits[i];
        let unit = match l.kind {
            StepKind::Members => " members",
            StepKind::Percent => "%",
        };
        let rule = if up { "scale_up_limit" } else { "scale_down_limit" };
        let reason = format!("{field}[{i}]: at most {}{unit} per {}s, from {base} at the start of the period (the most permissive limit)", l.value, l.period_secs);
        set(&mut clamps, &mut d, limited, rule, reason);
    }

    let left = |at: i64, secs: u64| (at + secs as i64 * 1000 - now + 999) / 1000;
    if d > current
        && let Some(last) = state.last_up().filter(|a| now < a.at + g.scale_up_cooldown_secs as i64 * 1000)
    {
        let reason = format!("the last scale-up ({} → {}) was less than {}s ago ({}s left)", last.from, last.to, g.scale_up_cooldown_secs, left(last.at, g.scale_up_cooldown_secs));
        set(&mut clamps, &mut d, current, "scale_up_cooldown", reason);
    }
    if d < current
        && let Some(last) = state.last_action().filter(|a| now < a.at + g.scale_down_cooldown_secs as i64 * 1000)
    {
        let reason = format!("the last action, up or down ({} → {}), was less than {}s ago ({}s left)", last.from, last.to, g.scale_down_cooldown_secs, left(last.at, g.scale_down_cooldown_secs));
        set(&mut clamps, &mut d, current, "scale_down_cooldown", reason);
    }
    in_flight(state, current, d, clamps)
}

/// The last rule: one action at a time.
fn in_flight(state: &GuardState, current: u32, mut d: u32, mut clamps: Vec<Clamp>) -> Guarded {
    if d != current
        && let Some(f) = state.in_flight
    {
        clamps.push(Clamp { guardrail: "in_flight".into(), from: d, to: current, reason: format!("the action {} → {} has not finished", f.from, f.to) });
        d = current;
    }
    Guarded { desired: d, clamps }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Guardrails {
        Guardrails { tolerance: 0.0, scale_up_cooldown_secs: 0, scale_down_cooldown_secs: 0, scale_down_stabilization_secs: 0, scale_up_limits: vec![], scale_down_limits: vec![], manual_hold_secs: 0, rollback_after_faults: 0 }
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
        assert!(r.clamps[0].reason.contains("the last action, up or down (2 → 4)") && r.clamps[0].reason.contains("60s left"), "{:?}", r.clamps);
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

    /// The scale-down cooldown counts from the last action in either
    /// direction, as its documentation and its message say: a scale-up
    /// after an older scale-down restarts it.
    #[test]
    fn the_scale_down_cooldown_counts_from_the_last_action_either_way() {
        let g = Guardrails { scale_down_cooldown_secs: 60, ..quiet() };
        let mut s = GuardState::default();
        s.record_action(Scaled { at: 0, from: 10, to: 8 });
        s.record_action(Scaled { at: 100_000, from: 8, to: 12 });
        let r = apply(&g, &mut s, 130_000, 12, 1, 100, 6);
        assert_eq!((r.desired, rules(&r)), (12, vec!["scale_down_cooldown"]), "30 s after a scale-up");
        assert_eq!(apply(&g, &mut s, 161_000, 12, 1, 100, 6).desired, 6);
    }

    #[test]
    fn a_step_limit_clamp_names_the_limit_that_applied() {
        let g = Guardrails {
            scale_up_limits: vec![StepLimit { kind: StepKind::Percent, value: 50.0, period_secs: 60 }, StepLimit { kind: StepKind::Members, value: 3.0, period_secs: 15 }],
            ..quiet()
        };
        let r = apply(&g, &mut GuardState::default(), 0, 4, 1, 100, 20);
        assert_eq!(r.desired, 7);
        assert!(r.clamps[0].reason.starts_with("scale_up_limits[1]: at most 3 members per 15s, from 4"), "{:?}", r.clamps);
        let r = apply(&g, &mut GuardState::default(), 0, 10, 1, 100, 40);
        assert_eq!(r.desired, 15);
        assert!(r.clamps[0].reason.starts_with("scale_up_limits[0]: at most 50% per 60s, from 10"), "{:?}", r.clamps);
    }

    #[test]
    fn a_manual_target_holds_then_counts_for_stabilization() {
        let g = Guardrails { scale_down_stabilization_secs: 120, ..quiet() };
        let mut s = GuardState::default();
        s.manual(&g, 0, 12, 60);
        s.record_action(Scaled { at: 0, from: 3, to: 12 });
        // During the hold the policies' 1 is recorded but the pool stays.
        let r = apply(&g, &mut s, 30_000, 12, 1, 20, 1);
        assert_eq!((r.desired, rules(&r)), (12, vec!["manual_hold"]));
        assert!(r.clamps[0].reason.contains("an operator set 12 30s ago, held for 30s more; the policies' 1"), "{:?}", r.clamps);
        // The hold is said even when the policies agree.
        assert_eq!(rules(&apply(&g, &mut s, 40_000, 12, 1, 20, 12)), vec!["manual_hold"]);
        // After it, stabilization keeps the manual 12 for its window, not a drop to 1.
        let r = apply(&g, &mut s, 61_000, 12, 1, 20, 1);
        assert_eq!((r.desired, rules(&r)), (12, vec!["scale_down_stabilization"]));
        assert!(s.hold.is_none(), "an expired hold is forgotten");
        assert_eq!(apply(&g, &mut s, 61_000 + 121_000, 12, 1, 20, 1).desired, 1);
        // A manual scale without a hold still counts as a recommendation.
        let mut s = GuardState::default();
        s.manual(&g, 0, 9, 0);
        assert_eq!(apply(&g, &mut s, 10_000, 9, 1, 20, 2).desired, 9);
    }
}
