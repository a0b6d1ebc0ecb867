//! Retry waits shared by every target that calls an outside API (EC2,
//! the Docker engine, Compute Engine, Azure Resource Manager).
//!
//! Why here and not in each adapter: "exponential back-off with full
//! jitter" is one rule, and a host that runs many pools against one
//! account or engine must spread its retries the same way whichever
//! adapter makes them. What is worth retrying stays with each adapter,
//! since only it knows which of its platform's errors are transient and
//! which calls are safe to send twice.

use std::time::Duration;

/// Retry settings: up to `attempts` tries, waits of `base` doubling up to `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { attempts: 6, base: Duration::from_millis(100), cap: Duration::from_secs(5) }
    }
}

impl Backoff {
    /// The wait before try `attempt + 1` ("full jitter": uniform in
    /// [0, min(cap, base·2^attempt)]), so many retrying hosts spread out.
    pub fn wait(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        ceiling.mul_f64(jitter())
    }
}

/// A number in [0, 1) from the clock and a counter; no RNG crate for this.
fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_with_jitter() {
        let b = Backoff { attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        for attempt in 0..12 {
            let ceiling = Duration::from_millis(100 * (1u64 << attempt)).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(b.wait(attempt) <= ceiling, "attempt {attempt}");
            }
        }
        let waits: Vec<_> = (0..20).map(|_| b.wait(5)).collect();
        assert!(waits.iter().any(|w| *w != waits[0]), "jitter spreads the waits: {waits:?}");
    }
}
