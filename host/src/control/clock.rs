//! Time as the control loop sees it: the wall clock live, a virtual one in
//! the simulator. The pipeline never reads either; the loop passes `now` in.

use std::time::Duration;

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

pub struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> i64 {
        scalewise_providers::now_ms()
    }
}

/// A clock that moves only when told: the simulator's, and tests'.
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: std::sync::atomic::AtomicI64,
}

impl VirtualClock {
    pub fn new(now_ms: i64) -> Self {
        Self { now: now_ms.into() }
    }

    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// How long until the pool's next tick: ticks fall on interval boundaries
/// shifted by the pool's `phase`, so a restart does not move a pool's
/// schedule, and thousands of pools with the same interval spread over it
/// instead of all waking at once.
pub fn until_next_tick(now_ms: i64, interval: Duration, phase_ms: i64) -> Duration {
    let i = interval.as_millis().max(1) as i64;
    Duration::from_millis((i - (now_ms - phase_ms).rem_euclid(i)) as u64)
}

/// A pool's phase within its interval, from its id (FNV-1a): stable across
/// restarts, spread evenly across pools.
pub fn phase_of(id: &str, interval: Duration) -> i64 {
    let h = id.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    (h % interval.as_millis().max(1) as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_shifted_boundaries() {
        let s = Duration::from_secs(1);
        assert_eq!(until_next_tick(10_000, s, 0), s);
        assert_eq!(until_next_tick(10_250, s, 300), Duration::from_millis(50));
        assert_eq!(until_next_tick(10_300, s, 300), s);
        let phases: std::collections::HashSet<i64> = (0..1000).map(|i| phase_of(&format!("pool-{i}"), s) / 100).collect();
        assert_eq!(phases.len(), 10, "1000 pools cover every tenth of the interval");
    }
}
