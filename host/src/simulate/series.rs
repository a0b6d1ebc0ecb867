//! A step series kept at a bounded resolution, for plots.
//!
//! A report plots demand and supply over the whole trace, which may have
//! millions of steps (or an unknown number, from a pipe). A [`Series`]
//! keeps at most [`BUCKETS`] buckets of equal width; when the steps outgrow
//! them, neighbouring buckets merge and the width doubles. Each bucket
//! holds the sum of its steps' values, so a point is the bucket's mean.

use serde::Serialize;

pub const BUCKETS: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Steps per bucket.
    width: u64,
    sums: Vec<f64>,
    /// Steps covered so far.
    len: u64,
}

impl Default for Series {
    fn default() -> Self {
        Self { width: 1, sums: Vec::new(), len: 0 }
    }
}

impl Series {
    /// Cover steps up to `len` (exclusive), coarsening as needed.
    pub fn extend_to(&mut self, len: u64) {
        while len.div_ceil(self.width) as usize > BUCKETS {
            self.sums = self.sums.chunks(2).map(|c| c.iter().sum()).collect();
            self.width *= 2;
        }
        self.len = self.len.max(len);
        let n = self.len.div_ceil(self.width) as usize;
        if self.sums.len() < n {
            self.sums.resize(n, 0.0);
        }
    }

    /// Append the next step's value.
    pub fn push(&mut self, value: f64) {
        let at = self.len;
        self.extend_to(at + 1);
        self.sums[(at / self.width) as usize] += value;
    }

    /// Add `value` to every step in `from..to` (already covered).
    pub fn add_range(&mut self, from: u64, to: u64, value: f64) {
        let to = to.min(self.len);
        let mut at = from;
        while at < to {
            let bucket = at / self.width;
            let end = ((bucket + 1) * self.width).min(to);
            self.sums[bucket as usize] += value * (end - at) as f64;
            at = end;
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (middle step, mean value) per bucket.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.sums
            .iter()
            .enumerate()
            .map(|(i, sum)| {
                let start = i as u64 * self.width;
                let steps = (self.len - start).min(self.width) as f64;
                (start as f64 + steps / 2.0, sum / steps)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarsens_and_keeps_means() {
        let mut s = Series::default();
        for i in 0..(BUCKETS as u64 * 4) {
            s.push((i % 2) as f64);
        }
        let p = s.points();
        assert_eq!(p.len(), BUCKETS);
        assert!(p.iter().all(|&(_, v)| v == 0.5), "pairs of 0 and 1 average to a half");
        let mut r = Series::default();
        r.extend_to(10);
        r.add_range(2, 6, 3.0);
        let v: Vec<f64> = r.points().iter().map(|p| p.1).collect();
        assert_eq!(v, [0.0, 0.0, 3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
