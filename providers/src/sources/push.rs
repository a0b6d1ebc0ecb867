//! Samples pushed to the host (`POST /pools/{id}/metrics`), kept in memory.
//!
//! Each series is a bounded ring: a sender that pushes faster than anything
//! reads costs a fixed amount of memory, and the oldest samples go first.
//! The ring is kept in time order (a late sample is inserted where it
//! belongs), so a query finds its window by binary search and copies only
//! the samples inside it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::sources::{MetricError, MetricSource, Window};
use crate::Sample;

/// Samples kept per series.
pub const RING: usize = 4096;

#[derive(Default)]
pub struct PushSource {
    series: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl PushSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record samples of `name`. Non-finite values are refused with the
    /// index of the first one, and nothing of that batch is kept.
    pub fn push(&self, name: &str, samples: &[Sample]) -> Result<(), String> {
        if name.is_empty() || name.chars().count() > 200 {
            return Err("series name must be 1 to 200 characters".into());
        }
        if let Some(i) = samples.iter().position(|s| !s.value.is_finite()) {
            return Err(format!("samples[{i}].value is not a finite number"));
        }
        let mut series = self.series.lock().unwrap();
        let ring = series.entry(name.to_owned()).or_default();
        for s in samples {
            if ring.len() == RING {
                ring.pop_front();
            }
            if ring.back().is_none_or(|b| b.at <= s.at) {
                ring.push_back(*s);
            } else {
                let at = ring.partition_point(|r| r.at <= s.at);
                ring.insert(at, *s);
            }
        }
        Ok(())
    }

    pub fn names(&self) -> Vec<String> {
        self.series.lock().unwrap().keys().cloned().collect()
    }
}

#[async_trait]
impl MetricSource for PushSource {
    fn kind(&self) -> &'static str {
        "push"
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        let series = self.series.lock().unwrap();
        let Some(ring) = series.get(query) else {
            return Err(MetricError::Unknown {
                source_kind: "push",
                query: query.into(),
                hint: "; nothing has been pushed under that name yet".into(),
            });
        };
        let from = ring.partition_point(|s| s.at < window.start());
        let to = ring.partition_point(|s| s.at <= window.end);
        Ok(ring.range(from..to.max(from)).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_window_and_refuses_nan() {
        let p = PushSource::new();
        p.push("q", &[Sample { at: 1000, value: 1.0 }, Sample { at: 2000, value: 2.0 }]).unwrap();
        let err = p.push("q", &[Sample { at: 3000, value: 3.0 }, Sample { at: 4000, value: f64::NAN }]).unwrap_err();
        assert!(err.contains("samples[1]"), "{err}");
        let got = p.query("q", Window { end: 5000, length_ms: 3500, step_ms: 1000 }).await.unwrap();
        assert_eq!(got, vec![Sample { at: 2000, value: 2.0 }]);
        assert!(matches!(p.query("nope", Window { end: 0, length_ms: 1, step_ms: 1 }).await, Err(MetricError::Unknown { .. })));
    }

    #[tokio::test]
    async fn late_samples_land_in_time_order() {
        let p = PushSource::new();
        p.push("q", &[Sample { at: 1000, value: 1.0 }, Sample { at: 3000, value: 3.0 }]).unwrap();
        p.push("q", &[Sample { at: 2000, value: 2.0 }]).unwrap();
        let got = p.query("q", Window { end: 3000, length_ms: 2000, step_ms: 1000 }).await.unwrap();
        assert_eq!(got.iter().map(|s| s.at).collect::<Vec<_>>(), [1000, 2000, 3000]);
    }

    #[tokio::test]
    async fn ring_is_bounded() {
        let p = PushSource::new();
        let many: Vec<Sample> = (0..RING as i64 + 10).map(|i| Sample { at: i, value: i as f64 }).collect();
        p.push("q", &many).unwrap();
        let got = p.query("q", Window { end: i64::MAX / 2, length_ms: i64::MAX / 2, step_ms: 1 }).await.unwrap();
        assert_eq!(got.len(), RING);
        assert_eq!(got[0].at, 10);
    }
}
