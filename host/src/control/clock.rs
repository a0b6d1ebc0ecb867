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

/// How long until the next multiple of `interval` after `now`: ticks line
/// up on interval boundaries, so pools sharing an interval tick together
/// and a restart does not shift the schedule.
pub fn until_next_tick(now_ms: i64, interval: Duration) -> Duration {
    let i = interval.as_millis().max(1) as i64;
    Duration::from_millis((i - now_ms.rem_euclid(i)) as u64)
}
