//! A hold on scale-ups after the platform refused more capacity: a quota,
//! an image or instance spec it will not take, instances it cannot create.
//!
//! Why one mechanism for every outside target: the answer to "the platform
//! said no" is the same everywhere. Asking again at every tick only spends
//! the account's API rate (and fills the log), so the target reports, as
//! [`super::Target::headroom`], that the pool holds at the size it reached,
//! with the platform's reason, until the hold runs out. The decision then
//! shows `limited` and why, like any other feasibility limit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Headroom, PoolState};

#[derive(Default)]
pub struct ScaleUpHold {
    held: Mutex<Option<Held>>,
}

#[derive(Clone)]
struct Held {
    until: Instant,
    size: u32,
    why: String,
}

impl ScaleUpHold {
    /// Hold scale-ups at `size` for `how_long`, because of `why`.
    pub fn set(&self, how_long: Duration, size: u32, why: String) {
        // A cooldown too long for the clock holds as long as the clock goes.
        let now = Instant::now();
        let until = now.checked_add(how_long).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        *self.held.lock().unwrap() = Some(Held { until, size, why });
    }

    /// The hold as a headroom while it lasts: at most `size` (or what the
    /// pool holds now, if more), and why, in the words of `platform`
    /// ("EC2 refused more instances"). `keep` extends a hold whose time is
    /// up while its cause is still visible.
    pub fn headroom(&self, state: &PoolState, platform: &str, keep: bool) -> Option<Headroom> {
        let mut held = self.held.lock().unwrap();
        let h = held.clone()?;
        let left = h.until.checked_duration_since(Instant::now());
        if left.is_none() && !keep {
            *held = None;
            return None;
        }
        let until = match left {
            Some(l) => format!("; holding for another {}s before trying again", l.as_secs()),
            None => String::new(),
        };
        Some(Headroom { at_most: h.size.max(state.running()).max(if keep { 0 } else { state.capacity() }), why: format!("{platform} ({}){until}", h.why) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{Member, MemberState};

    fn pool(active: u32, starting: u32) -> PoolState {
        let mut m: Vec<Member> = (0..active).map(|i| Member::new(format!("a{i}"), MemberState::Active, 0)).collect();
        m.extend((0..starting).map(|i| Member::new(format!("s{i}"), MemberState::Starting, 0)));
        PoolState { members: m.into() }
    }

    #[test]
    fn a_hold_caps_at_its_size_until_it_runs_out() {
        let h = ScaleUpHold::default();
        assert!(h.headroom(&pool(2, 0), "EC2 refused more instances", false).is_none(), "no hold, no limit");
        h.set(Duration::from_secs(60), 2, "InstanceLimitExceeded".into());
        let r = h.headroom(&pool(2, 1), "EC2 refused more instances", false).unwrap();
        assert_eq!(r.at_most, 3, "never below what the pool holds");
        assert!(r.why.starts_with("EC2 refused more instances (InstanceLimitExceeded); holding for another 5"), "{}", r.why);
        h.set(Duration::ZERO, 2, "gone".into());
        std::thread::sleep(Duration::from_millis(5));
        assert!(h.headroom(&pool(2, 0), "x", false).is_none(), "ran out");
        assert!(h.headroom(&pool(2, 0), "x", false).is_none(), "and is cleared");
    }

    #[test]
    fn a_hold_whose_cause_is_still_there_outlives_its_time_at_what_runs() {
        let h = ScaleUpHold::default();
        h.set(Duration::ZERO, 4, "QUOTA_EXCEEDED".into());
        std::thread::sleep(Duration::from_millis(5));
        // Ten held, four running: the six that cannot be created do not count.
        let r = h.headroom(&pool(4, 6), "Compute Engine cannot create more instances", true).unwrap();
        assert_eq!(r.at_most, 4);
        assert_eq!(r.why, "Compute Engine cannot create more instances (QUOTA_EXCEEDED)");
    }
}
