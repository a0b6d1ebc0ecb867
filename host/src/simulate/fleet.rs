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
//! Victims are picked by the providers' own [`pick_victims`]: instances
//! still booting first, then the oldest.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scalewise_providers::{Member, MemberState, PoolState, ProviderError, ScaleOutcome, Target, pick_victims};

use super::oracle::Billing;
use crate::control::clock::Clock;

/// Spot instances: what share of the fleet, their price and how often they go.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spot {
    pub share: f64,
    pub hourly: f64,
    pub interruptions_per_hour: f64,
    pub seed: u64,
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
}

/// What the fleet cost, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct FleetBill {
    pub on_demand_units: u64,
    pub spot_units: u64,
    pub launches: u64,
    pub interruptions: u64,
}

struct Fleet {
    instances: Vec<Instance>,
    next_id: u64,
    step: u64,
    /// (running, booting) at each recent step, newest last; `history[i]` is
    /// step `step + 1 - history.len() + i`.
    history: std::collections::VecDeque<(u32, u32)>,
    bill: FleetBill,
    rng: u64,
}

pub struct SimFleet {
    fleet: Mutex<Fleet>,
    clock: Arc<dyn Clock>,
    origin_ms: i64,
    step_ms: i64,
    billing: Billing,
    spot: Spot,
}

impl SimFleet {
    /// A fleet with `initial` instances running from step 0.
    pub fn new(clock: Arc<dyn Clock>, origin_ms: i64, billing: Billing, spot: Spot, initial: u32) -> Self {
        let instances = (0..initial as u64)
            .map(|id| Instance { id, billed_from: 0, ready: 0, drain_from: None, stop: None, spot: false })
            .collect();
        let history = std::collections::VecDeque::from([(initial, 0)]);
        let fleet = Fleet { instances, next_id: initial as u64, step: 0, history, bill: FleetBill::default(), rng: spot.seed ^ 0x9e37_79b9_7f4a_7c15 };
        Self { fleet: Mutex::new(fleet), clock, origin_ms, step_ms: billing.step_secs as i64 * 1000, billing, spot }
    }

    /// Move to step `t`: finish drains, interrupt spot instances. Returns
    /// (running, booting) at `t`. Moving to the current step again changes
    /// nothing; the fleet never moves back.
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
        if t <= f.step {
            return *f.history.back().expect("never empty");
        }
        // Steps skipped over (a live clock may jump) are walked one by one.
        if t > f.step + 1 {
            let from = f.step + 1;
            for s in from..t {
                self.advance_locked(f, s);
            }
        }
        f.step = t;
        let p = if self.spot.interruptions_per_hour > 0.0 {
            1.0 - (-self.spot.interruptions_per_hour * self.billing.step_secs as f64 / 3600.0).exp()
        } else {
            0.0
        };
        let billing = self.billing;
        let Fleet { instances, bill, rng, .. } = f;
        instances.retain_mut(|i| {
            if i.spot && p > 0.0 && i.stop.is_none() && i.billed_from < t && next_unit(rng) < p {
                i.stop = Some(t);
                bill.interruptions += 1;
            }
            match i.stop {
                Some(stop) if stop <= t => {
                    charge(bill, &billing, i, stop);
                    false
                }
                _ => true,
            }
        });
        let running = instances.iter().filter(|i| serving(i, t)).count() as u32;
        let booting = instances.iter().filter(|i| i.ready > t && i.drain_from.is_none()).count() as u32;
        f.history.push_back((running, booting));
        if f.history.len() > HISTORY {
            f.history.pop_front();
        }
        (running, booting)
    }

    /// Bill everything still alive at the end (`steps` steps in all).
    pub fn finish(&self, steps: u64) -> FleetBill {
        let mut f = self.fleet.lock().unwrap();
        let billing = self.billing;
        let Fleet { instances, bill, .. } = &mut *f;
        for i in instances.drain(..) {
            // Drains in progress finish; everything else stops at the end.
            let stop = i.stop.unwrap_or(steps).max(i.billed_from);
            charge(bill, &billing, &i, stop);
        }
        *bill
    }

    fn step_ms(&self, step: u64) -> i64 {
        self.origin_ms + step as i64 * self.step_ms
    }
}

fn serving(i: &Instance, t: u64) -> bool {
    i.ready <= t && i.drain_from.is_none_or(|d| t < d)
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
        let members = f
            .instances
            .iter()
            .filter(|i| i.stop.is_none_or(|s| s > t))
            .map(|i| Member {
                id: format!("i-{}", i.id),
                state: if i.drain_from.is_some_and(|d| d <= t + 1) {
                    MemberState::Draining
                } else if i.ready > t {
                    MemberState::Starting
                } else {
                    MemberState::Active
                },
                started_at: self.step_ms(i.billed_from),
                healthy: true,
                busy: None,
                cpu_percent: None,
                memory_bytes: None,
                restarts: 0,
                last_error: None,
            })
            .collect();
        Ok(PoolState { members })
    }

    async fn scale_to(&self, n: u32) -> Result<ScaleOutcome, ProviderError> {
        let state = self.state().await?;
        let current = state.capacity();
        let mut f = self.fleet.lock().unwrap();
        let t = self.now_step().max(f.step);
        self.advance_locked(&mut f, t);
        let boot = self.billing.boot_steps;
        let (mut launched, mut removed) = (Vec::new(), Vec::new());
        if n > current {
            for _ in current..n {
                let spot_now = f.instances.iter().filter(|i| i.spot && i.drain_from.is_none()).count() as f64;
                let alive = f.instances.iter().filter(|i| i.drain_from.is_none()).count() as f64 + 1.0;
                let spot = self.spot.share > 0.0 && spot_now < (self.spot.share * alive).round();
                let id = f.next_id;
                f.next_id += 1;
                f.bill.launches += 1;
                f.instances.push(Instance { id, billed_from: t + 1, ready: t + 1 + boot, drain_from: None, stop: None, spot });
                launched.push(format!("i-{id}"));
            }
        } else if n < current {
            let victims = pick_victims(&state.members, (current - n) as usize);
            for v in victims {
                let Some(id) = v.strip_prefix("i-").and_then(|s| s.parse::<u64>().ok()) else { continue };
                if let Some(i) = f.instances.iter_mut().find(|i| i.id == id) {
                    i.drain_from = Some(t + 1);
                    // Not booted yet: cancelled at once; otherwise drained.
                    i.stop = Some(if i.ready > t { t + 1 } else { t + 1 + self.billing.drain_steps });
                    removed.push(v.clone());
                }
            }
        }
        Ok(ScaleOutcome { launched, removed, capacity: n })
    }

    async fn shutdown(&self) {}
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
        let f = fleet(0, Spot { share: 0.5, hourly: 0.01, interruptions_per_hour: 0.0, seed: 1 });
        f.advance(0);
        f.scale_to(4).await.unwrap();
        f.advance(1);
        f.scale_to(0).await.unwrap();
        f.advance(2);
        let bill = f.finish(3);
        // Launched at 0 (billed from 1), cancelled at 1 (gone at 2): one step each.
        assert_eq!((bill.on_demand_units, bill.spot_units, bill.launches), (2, 2, 4), "{bill:?}");
        let g = fleet(0, Spot { share: 0.5, hourly: 0.01, interruptions_per_hour: 0.0, seed: 1 });
        g.advance(0);
        g.scale_to(4).await.unwrap();
        let spot = g.fleet.lock().unwrap().instances.iter().filter(|i| i.spot).count();
        assert_eq!(spot, 2);
    }

    #[tokio::test]
    async fn spot_interruptions_take_instances_away() {
        let f = fleet(0, Spot { share: 1.0, hourly: 0.01, interruptions_per_hour: 60.0, seed: 7 });
        f.advance(0);
        f.scale_to(10).await.unwrap();
        for t in 1..20 {
            f.advance(t);
        }
        let bill = f.finish(20);
        assert!(bill.interruptions >= 9, "at 60 per hour nearly all go within 20 minutes: {bill:?}");
    }
}
