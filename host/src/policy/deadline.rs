//! When a call that ran past its deadline is really stuck.
//!
//! The deadline is armed in wall-clock time (wasmtime's epochs, rhai's
//! progress callback), because checking a wall clock costs nothing on the
//! hot path. But wall-clock time also counts the moments the thread sat
//! preempted, and on a busy host (two cores, a compile in progress, many
//! pools evaluating) a 30 µs call can wait 10 ms for a core. Killing it
//! would punish a well-behaved policy for the host's load.
//!
//! So passing the wall-clock deadline only starts a grace period, in which
//! the call is stopped once its own thread has spent a whole deadline's worth
//! of CPU time since. A stuck policy burns CPU and is stopped after about
//! twice its deadline on an idle host; a preempted one finishes as soon as it
//! runs again. A wall-clock backstop stops anything that somehow escapes the
//! CPU accounting. The thread's CPU clock is read only in the grace period,
//! never on the normal path.

use std::time::{Duration, Instant};

/// Past this multiple of the deadline in wall time, a call stops regardless.
const BACKSTOP: u32 = 100;

/// CPU time consumed by the calling thread so far. On some kernels (seen on
/// this project's VMs) it advances in scheduler-tick steps, so a grace period
/// can end up to one tick early; a stuck call is stopped all the same.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is
    // supported on every Linux and macOS the host runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::MAX; // no CPU clock: stop at the first check
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The grace-period bookkeeping of one call.
#[derive(Debug, Clone)]
pub(crate) struct Overrun {
    deadline: Duration,
    grace: Option<(Duration, Instant)>,
}

impl Overrun {
    pub(crate) fn new(deadline: Duration) -> Self {
        Self { deadline, grace: None }
    }

    /// Forget the previous call.
    /// Start over with another deadline.
    pub(crate) fn arm(&mut self, deadline: Duration) {
        self.deadline = deadline;
        self.grace = None;
    }

    /// Called whenever the call is found past its wall-clock deadline:
    /// whether to stop it now.
    pub(crate) fn should_stop(&mut self) -> bool {
        let cpu = thread_cpu_time();
        match self.grace {
            None => {
                self.grace = Some((cpu, Instant::now()));
                false
            }
            Some((cpu_at_start, wall_at_start)) => {
                cpu.saturating_sub(cpu_at_start) >= self.deadline
                    || wall_at_start.elapsed() >= self.deadline * BACKSTOP
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_is_stopped_after_about_a_deadline_of_cpu() {
        let deadline = Duration::from_millis(20);
        let mut o = Overrun::new(deadline);
        assert!(!o.should_stop(), "the first check only starts the grace period");
        let started = Instant::now();
        while !o.should_stop() {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        // Stopped well before the 100x wall-clock backstop, and not before a
        // good part of the deadline (the CPU clock may step by a tick).
        let spent = started.elapsed();
        assert!(spent >= deadline / 2, "stopped after only {spent:?}");
        assert!(spent < deadline * 50, "took {spent:?}");
    }

    #[test]
    fn a_sleeping_thread_is_not_stopped_before_the_backstop() {
        // A deadline well above a scheduler tick, so a stepping CPU clock
        // cannot fake one; the backstop is 100x it, far beyond the sleep.
        let mut o = Overrun::new(Duration::from_millis(50));
        assert!(!o.should_stop());
        std::thread::sleep(Duration::from_millis(20));
        // Wall time passes but almost no CPU: still in grace.
        assert!(!o.should_stop());
        o.arm(Duration::from_millis(50));
        assert!(!o.should_stop());
    }
}
