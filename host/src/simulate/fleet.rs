//! The simulated provider: a fleet of instances in virtual time.
//!
//! It is a [`Target`] like any other, so the control loop drives it through
//! the same calls as a real pool. Time is in trace steps, read from the
//! simulation's clock. The rules (the oracle pays the same; see `oracle.rs`):
//! - a launch decided at step `t` is billed from `t + 1` and serves from
//!   `t + 1 + boot`;
//! - a removal decided at step `t` stops serving at `t + 1` and is billed
//!   for `drain` more steps; a removed instance that had not booted yet is
//!   cancelled at once;
//! - billed time is rounded up to the billing granularity per instance;
//! - a share of launches can be spot instances, at the spot price, each
//!   interrupted with the configured rate (a seeded random stream, so a run
//!   is reproducible); an interrupted instance is gone at once.
//!
//! Victims are picked in the order the providers' `pick_victims` uses:
//! instances still booting first, then the oldest.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scalewise_providers::{Headroom, Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target};
use scalewise_sdk::Placement;

use super::oracle::Billing;
use crate::control::clock::Clock;

/// Spot instances: what share of the fleet, their price and how often they go.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Spot {
    pub share: f64,
    pub hourly: f64,
    pub interruptions_per_hour: f64,
    pub seed: u64,
    /// Periods when the market takes spot capacity back faster.
    pub storms: Vec<Storm>,
}

/// A period of steps `[from, to)` with its own interruption rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storm {
    pub from: u64,
    pub to: u64,
    pub interruptions_per_hour: f64,
}

impl Spot {
    /// The market's interruption rate per spot instance-hour at step `t`.
    pub fn rate_at(&self, t: u64) -> f64 {
        self.storms.iter().find(|s| (s.from..s.to).contains(&t)).map_or(self.interruptions_per_hour, |s| s.interruptions_per_hour)
    }
}

/// Steps of (running, booting) history kept for metric windows.
const HISTORY: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Instance {
    id: u64,
    billed_from: u64,
    ready: u64,
    /// Serving stops here (a removal); billing stops at `stop`.
    drain_from: Option<u64>,
    stop: Option<u64>,
    spot: bool,
    /// When a spot instance will be interrupted, drawn at launch.
    interrupt_at: Option<u64>,
    /// What the fleet's counts hold it as: (serving, booting).
    counted: (bool, bool),
}

impl Instance {
    fn serving(&self, t: u64) -> bool {
        self.ready <= t && self.drain_from.is_none_or(|d| t < d)
    }

    fn booting(&self, t: u64) -> bool {
        self.ready > t && self.drain_from.is_none_or(|d| t < d)
    }

    /// The next step after `t` at which anything about it changes.
    fn next_change(&self, t: u64) -> Option<u64> {
        [Some(self.ready), self.drain_from, self.stop, self.interrupt_at].into_iter().flatten().filter(|&s| s > t).min()
    }
}

/// What the fleet cost, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct FleetBill {
    pub on_demand_units: u64,
    pub spot_units: u64,
    pub launches: u64,
    pub interruptions: u64,
}

impl FleetBill {
    /// What was billed after `earlier` was.
    pub fn since(&self, earlier: &FleetBill) -> FleetBill {
        FleetBill {
            on_demand_units: self.on_demand_units.saturating_sub(earlier.on_demand_units),
            spot_units: self.spot_units.saturating_sub(earlier.spot_units),
            launches: self.launches.saturating_sub(earlier.launches),
            interruptions: self.interruptions.saturating_sub(earlier.interruptions),
        }
    }
}

/// The fleet's state. A step costs what changes in it, not the fleet's
/// size: each instance has its next change (booted, draining, gone,
/// interrupted) queued, and the running and booting counts move with them.
struct Fleet {
    instances: std::collections::BTreeMap<u64, Instance>,
    /// (step, instance): something may change for the instance then.
    events: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64)>>,
    running: u32,
    booting: u32,
    next_id: u64,
    step: u64,
    /// (running, booting) at each recent step, newest last; `history[i]` is
    /// step `step + 1 - history.len() + i`.
    history: std::collections::VecDeque<(u32, u32)>,
    bill: FleetBill,
    rng: u64,
    /// The members as last built, until something changes.
    members: Option<Arc<[Member]>>,
    /// Each instance's member id, made once; the same keys as `instances`,
    /// so the two iterate in step.
    names: std::collections::BTreeMap<u64, Arc<str>>,
}

impl Fleet {
    /// Count the instance as what it is at step `t`.
    fn count_in(&mut self, i: &mut Instance, t: u64) {
        i.counted = (i.serving(t), i.booting(t));
        self.running += i.counted.0 as u32;
        self.booting += i.counted.1 as u32;
    }

    fn count_out(&mut self, i: &Instance) {
        self.running -= i.counted.0 as u32;
        self.booting -= i.counted.1 as u32;
    }

    /// Apply a change to instance `id` at step `t`, keeping the counts.
    fn update(&mut self, id: u64, t: u64, billing: &Billing, change: impl FnOnce(&mut Instance)) {
        let Some(mut i) = self.instances.get(&id).copied() else { return };
        self.members = None;
        self.count_out(&i);
        change(&mut i);
        if let Some(at) = i.interrupt_at.filter(|&at| at <= t && i.stop.is_none_or(|s| s > at)) {
            i.stop = Some(at);
            i.drain_from = Some(at);
            self.bill.interruptions += 1;
        }
        if let Some(stop) = i.stop.filter(|&s| s <= t) {
            charge(&mut self.bill, billing, &i, stop);
            self.instances.remove(&id);
            self.names.remove(&id);
            return;
        }
        self.count_in(&mut i, t);
        if let Some(next) = i.next_change(t) {
            self.events.push(std::cmp::Reverse((next, id)));
        }
        self.instances.insert(id, i);
    }

    fn launch(&mut self, mut i: Instance, t: u64) {
        self.members = None;
        self.names.insert(i.id, format!("i-{}", i.id).into());
        self.count_in(&mut i, t);
        self.instances.insert(i.id, i);
        if let Some(next) = i.next_change(t) {
            self.events.push(std::cmp::Reverse((next, i.id)));
        }
    }
}

pub struct SimFleet {
    fleet: Mutex<Fleet>,
    clock: Arc<dyn Clock>,
    origin_ms: i64,
    step_ms: i64,
    billing: Billing,
    spot: Spot,
    /// The most instances the account may run (launched, not yet gone).
    quota: Option<u32>,
}

impl SimFleet {
    /// A fleet with `initial` instances running from step 0.
    pub fn new(clock: Arc<dyn Clock>, origin_ms: i64, billing: Billing, spot: Spot, initial: u32) -> Self {
        let mut fleet = Fleet {
            instances: Default::default(),
            events: Default::default(),
            running: 0,
            booting: 0,
            next_id: initial as u64,
            step: 0,
            history: Default::default(),
            bill: FleetBill::default(),
            rng: spot.seed ^ 0x9e37_79b9_7f4a_7c15,
            members: None,
            names: Default::default(),
        };
        for id in 0..initial as u64 {
            fleet.launch(Instance { id, billed_from: 0, ready: 0, drain_from: None, stop: None, spot: false, interrupt_at: None, counted: (false, false) }, 0);
        }
        fleet.history.push_back((fleet.running, fleet.booting));
        Self { fleet: Mutex::new(fleet), clock, origin_ms, step_ms: billing.step_secs as i64 * 1000, billing, spot, quota: None }
    }

    /// Limit the fleet to `quota` instances, as a cloud account's quota does.
    pub fn with_quota(mut self, quota: Option<u32>) -> Self {
        self.quota = quota;
        self
    }

    /// The market's spot interruption rate at step `t`.
    pub fn spot_rate_at(&self, t: u64) -> f64 {
        self.spot.rate_at(t)
    }

    /// Move to step `t`: finish boots and drains, interrupt spot instances.
    /// Returns (running, booting) at `t`. Moving to the current step again
    /// changes nothing; the fleet never moves back.
    pub fn advance(&self, t: u64) -> (u32, u32) {
        let mut f = self.fleet.lock().unwrap();
        self.advance_locked(&mut f, t)
    }

    /// Running and booting at step `t`, if the fleet has been there recently.
    pub fn at(&self, t: u64) -> Option<(u32, u32)> {
        let f = self.fleet.lock().unwrap();
        let back = f.step.checked_sub(t)? as usize;
        f.history.len().checked_sub(back + 1).map(|i| f.history[i])
    }

    /// The step the clock is at.
    fn now_step(&self) -> u64 {
        ((self.clock.now_ms() - self.origin_ms).max(0) / self.step_ms) as u64
    }

    fn advance_locked(&self, f: &mut Fleet, t: u64) -> (u32, u32) {
        // Steps skipped over (a live clock may jump) are walked one by one.
        while f.step < t {
            let s = f.step + 1;
            f.step = s;
            self.storm(f, s);
            while let Some(&std::cmp::Reverse((at, id))) = f.events.peek() {
                if at > s {
                    break;
                }
                f.events.pop();
                // Counts are per step: re-count the instance as of `s`.
                f.update(id, s, &self.billing, |_| {});
            }
            let now = (f.running, f.booting);
            f.history.push_back(now);
            if f.history.len() > HISTORY {
                f.history.pop_front();
            }
        }
        *f.history.back().expect("never empty")
    }

    /// What the fleet has cost up to step `t`, instances still alive
    /// included as if they stopped then; the fleet goes on unchanged.
    pub fn bill_until(&self, t: u64) -> FleetBill {
        let f = self.fleet.lock().unwrap();
        let mut bill = f.bill;
        for i in f.instances.values() {
            let stop = i.stop.unwrap_or(t).min(t).max(i.billed_from);
            charge(&mut bill, &self.billing, i, stop);
        }
        bill
    }

    /// Bill everything still alive at the end (`steps` steps in all).
    pub fn finish(&self, steps: u64) -> FleetBill {
        let mut f = self.fleet.lock().unwrap();
        let billing = self.billing;
        let Fleet { instances, bill, .. } = &mut *f;
        for (_, i) in std::mem::take(instances) {
            // Drains in progress finish; everything else stops at the end.
            let stop = i.stop.unwrap_or(steps).max(i.billed_from);
            charge(bill, &billing, &i, stop);
        }
        *bill
    }

    fn step_ms(&self, step: u64) -> i64 {
        self.origin_ms + step as i64 * self.step_ms
    }

    /// In a storm, each spot instance alive at step `s` is also taken with
    /// the storm's extra hazard for one step (on top of the time drawn at
    /// launch from the base rate).
    fn storm(&self, f: &mut Fleet, s: u64) {
        let extra = (self.spot.rate_at(s) - self.spot.interruptions_per_hour) * self.billing.step_secs as f64 / 3600.0;
        if extra <= 0.0 {
            return;
        }
        let alive: Vec<u64> = f.instances.values().filter(|i| i.spot && i.drain_from.is_none() && i.billed_from <= s).map(|i| i.id).collect();
        for id in alive {
            if next_unit(&mut f.rng) < extra {
                f.update(id, s, &self.billing, |i| i.interrupt_at = Some(s));
            }
        }
    }

    /// When a spot instance billed from `from` will be interrupted.
    fn interruption(&self, rng: &mut u64, from: u64) -> Option<u64> {
        let per_step = self.spot.interruptions_per_hour * self.billing.step_secs as f64 / 3600.0;
        if per_step <= 0.0 {
            return None;
        }
        // Exponential waiting time, in whole steps (at least one).
        let wait = (-(1.0 - next_unit(rng)).ln() / per_step).ceil().max(1.0);
        Some(from.saturating_add(wait.min(u64::MAX as f64 / 2.0) as u64))
    }
}

fn charge(bill: &mut FleetBill, billing: &Billing, i: &Instance, stop: u64) {
    let units = billing.units(stop.saturating_sub(i.billed_from));
    if i.spot {
        bill.spot_units += units;
    } else {
        bill.on_demand_units += units;
    }
}

/// A uniform number in [0, 1) from a xorshift stream.
fn next_unit(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

#[async_trait]
impl Target for SimFleet {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    async fn reconcile(&self) -> Result<PoolState, ProviderError> {
        self.state().await
    }

    async fn state(&self) -> Result<PoolState, ProviderError> {
        let mut f = self.fleet.lock().unwrap();
        let t = self.now_step().max(f.step);
        self.advance_locked(&mut f, t);
        if f.members.is_none() {
            let members = f
                .instances
                .values()
                .zip(f.names.values())
                .map(|(i, name)| {
                    let state = if i.drain_from.is_some() {
                        MemberState::Draining
                    } else if i.ready > t {
                        MemberState::Starting
                    } else {
                        MemberState::Active
                    };
                    Member::new(name.clone(), state, self.step_ms(i.billed_from))
                })
                .collect();
            f.members = Some(members);
        }
        Ok(PoolState { members: f.members.clone().unwrap_or_default() })
    }

    async fn scale_to(&self, n: u32) -> Result<ScaleOutcome, ProviderError> {
        self.scale(n, None)
    }

    /// With a placement, launches are spot while the spot instances alive
    /// are fewer than it asks for (instances already running stay as they
    /// are, as in a cloud group that does not rebalance).
    async fn scale_placed(&self, n: u32, placement: Option<&Placement>) -> Result<ScaleOutcome, ProviderError> {
        self.scale(n, placement.map(|p| p.spot))
    }

    async fn headroom(&self, _: &PoolState) -> Option<Headroom> {
        let quota = self.quota?;
        let f = self.fleet.lock().unwrap();
        // Draining instances still count against a quota until they are gone.
        let held = f.instances.values().filter(|i| i.stop.is_none_or(|s| s > f.step)).count() as u32;
        let alive = f.instances.values().filter(|i| i.drain_from.is_none()).count() as u32;
        let more = quota.saturating_sub(held);
        Some(Headroom { at_most: alive + more, why: format!("provider quota: {held} of {quota} instances in use: {more} more fit") })
    }

    async fn shutdown(&self) {}
}

impl SimFleet {
    fn scale(&self, n: u32, spot_target: Option<u32>) -> Result<ScaleOutcome, ProviderError> {
        let mut f = self.fleet.lock().unwrap();
        let t = self.now_step().max(f.step);
        self.advance_locked(&mut f, t);
        let current = f.instances.values().filter(|i| i.drain_from.is_none()).count() as u32;
        let boot = self.billing.boot_steps;
        let (mut launched, mut removed) = (Vec::new(), Vec::new());
        let billing = self.billing;
        if n > current {
            let mut spot_now = f.instances.values().filter(|i| i.spot && i.drain_from.is_none()).count();
            for alive in current + 1..=n {
                // Spot while the spot share of what will be alive is below the target.
                let spot = match spot_target {
                    Some(target) => spot_now < target as usize,
                    None => self.spot.share > 0.0 && (spot_now as f64) < (self.spot.share * alive as f64).round(),
                };
                spot_now += spot as usize;
                let id = f.next_id;
                f.next_id += 1;
                f.bill.launches += 1;
                let interrupt_at = if spot { self.interruption(&mut f.rng, t + 1) } else { None };
                f.launch(Instance { id, billed_from: t + 1, ready: t + 1 + boot, drain_from: None, stop: None, spot, interrupt_at, counted: (false, false) }, t);
                launched.push(format!("i-{id}"));
            }
        } else if n < current {
            // As `pick_victims` orders members: not serving yet first, then oldest.
            let mut candidates: Vec<(bool, u64, u64)> = f.instances.values().filter(|i| i.drain_from.is_none()).map(|i| (i.ready <= t, i.billed_from, i.id)).collect();
            candidates.sort_unstable();
            for &(_, _, id) in candidates.iter().take((current - n) as usize) {
                // Not booted yet: cancelled at once; otherwise drained.
                f.update(id, t, &billing, |i| {
                    i.drain_from = Some(t + 1);
                    i.stop = Some(if i.ready > t { t + 1 } else { t + 1 + billing.drain_steps });
                });
                let v = format!("i-{id}");
                removed.push(v.clone());
            }
        }
        Ok(ScaleOutcome { launched, removed, capacity: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::clock::VirtualClock;

    fn fleet(initial: u32, spot: Spot) -> SimFleet {
        let billing = Billing { step_secs: 60, granularity_secs: 60, boot_steps: 2, drain_steps: 1 };
        SimFleet::new(Arc::new(VirtualClock::new(0)), 0, billing, spot, initial)
    }

    #[tokio::test]
    async fn launches_boot_and_removals_drain() {
        let f = fleet(1, Spot::default());
        assert_eq!(f.advance(0), (1, 0));
        f.scale_to(3).await.unwrap();
        assert_eq!(f.advance(1), (1, 2), "booting for two steps");
        assert_eq!(f.advance(2), (1, 2));
        assert_eq!(f.advance(3), (3, 0));
        f.scale_to(1).await.unwrap();
        assert_eq!(f.state().await.unwrap().capacity(), 1, "draining members do not count");
        assert_eq!(f.advance(4), (1, 0));
        let bill = f.finish(5);
        // Initial: 0..5 = 5. Two launched at step 0: billed 1..(4+1)=5 → 4 each.
        assert_eq!((bill.on_demand_units, bill.launches), (5 + 4 + 4, 2), "{bill:?}");
    }

    #[tokio::test]
    async fn cancelled_launches_stop_at_once_and_spot_follows_the_share() {
        let f = fleet(0, Spot { share: 0.5, hourly: 0.01, interruptions_per_hour: 0.0, seed: 1, storms: vec![] });
        f.advance(0);
        f.scale_to(4).await.unwrap();
        f.advance(1);
        f.scale_to(0).await.unwrap();
        f.advance(2);
        let bill = f.finish(3);
        // Launched at 0 (billed from 1), cancelled at 1 (gone at 2): one step each.
        assert_eq!((bill.on_demand_units, bill.spot_units, bill.launches), (2, 2, 4), "{bill:?}");
        let g = fleet(0, Spot { share: 0.5, hourly: 0.01, interruptions_per_hour: 0.0, seed: 1, storms: vec![] });
        g.advance(0);
        g.scale_to(4).await.unwrap();
        let spot = g.fleet.lock().unwrap().instances.values().filter(|i| i.spot).count();
        assert_eq!(spot, 2);
    }

    #[tokio::test]
    async fn a_placement_sets_the_spot_count_and_a_quota_the_headroom() {
        let f = fleet(0, Spot { hourly: 0.01, seed: 1, ..Spot::default() }).with_quota(Some(6));
        f.advance(0);
        let state = f.state().await.unwrap();
        assert_eq!(f.headroom(&state).await.unwrap().at_most, 6);
        f.scale_placed(5, Some(&Placement { kind: None, on_demand: 2, spot: 3 })).await.unwrap();
        let spot = f.fleet.lock().unwrap().instances.values().filter(|i| i.spot).count();
        assert_eq!(spot, 3);
        f.advance(3);
        f.scale_to(2).await.unwrap();
        // Three draining still hold quota for the drain step.
        let h = f.headroom(&f.state().await.unwrap()).await.unwrap();
        assert_eq!(h.at_most, 2 + 1, "{}", h.why);
        assert!(h.why.starts_with("provider quota: 5 of 6"), "{}", h.why);
    }

    #[tokio::test]
    async fn a_storm_takes_spot_instances_only_while_it_lasts() {
        let storm = Storm { from: 5, to: 15, interruptions_per_hour: 30.0 };
        let f = fleet(0, Spot { share: 0.5, hourly: 0.01, seed: 3, storms: vec![storm], ..Spot::default() });
        f.advance(0);
        f.scale_to(20).await.unwrap();
        f.advance(4);
        assert_eq!(f.fleet.lock().unwrap().bill.interruptions, 0, "calm before the storm");
        assert_eq!((f.spot_rate_at(4), f.spot_rate_at(5), f.spot_rate_at(15)), (0.0, 30.0, 0.0));
        f.advance(15);
        let taken = f.fleet.lock().unwrap().bill.interruptions;
        assert!((8..=10).contains(&taken), "half of those left each minute for 10 minutes takes nearly all 10 spot: {taken}");
        let left: Vec<bool> = f.fleet.lock().unwrap().instances.values().filter(|i| i.drain_from.is_none()).map(|i| i.spot).collect();
        assert!(left.iter().filter(|s| !**s).count() == 10, "on-demand instances untouched");
    }

    #[tokio::test]
    async fn spot_interruptions_take_instances_away() {
        let f = fleet(0, Spot { share: 1.0, hourly: 0.01, interruptions_per_hour: 60.0, seed: 7, storms: vec![] });
        f.advance(0);
        f.scale_to(10).await.unwrap();
        for t in 1..20 {
            f.advance(t);
        }
        let bill = f.finish(20);
        assert!(bill.interruptions >= 9, "at 60 per hour nearly all go within 20 minutes: {bill:?}");
    }
}
