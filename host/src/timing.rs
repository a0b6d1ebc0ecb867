//! Latency measurement shared by `scalewise policy bench` and `cargo bench`.
//!
//! Each call is timed on its own (not a batch divided by its size), because
//! what matters for a control loop is the tail, and a mean hides it.

use std::time::Instant;

/// Latency percentiles of timed calls, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Time `iterations` calls of `f`, after a warm-up, and summarise them.
pub fn measure(iterations: u32, mut f: impl FnMut()) -> Percentiles {
    for _ in 0..iterations.clamp(1, 500) {
        f();
    }
    let mut micros: Vec<f64> = (0..iterations.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1];
    Percentiles { p50: at(0.5), p99: at(0.99), mean: micros.iter().sum::<f64>() / micros.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered() {
        let mut n = 0u64;
        let p = measure(1000, || {
            n += 1;
            if n % 50 == 0 {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        assert!(p.p50 <= p.p99, "{p:?}");
        assert!(p.p99 >= 100.0, "the slow 2% must show in p99: {p:?}");
        assert!(p.p50 < 100.0, "{p:?}");
    }
}
