//! What the target reports about its members, as series: `running`,
//! `booting`, `busy`, `busy_ratio` (busy / running), `cpu` (mean percent of
//! one core per running member) and `memory` (resident bytes of all members).
//!
//! Like /proc, a target reports the present only; the source keeps a ring of
//! readings taken whenever it is queried.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::sources::{MetricError, MetricSource, Window, tidy};
use crate::targets::{MemberState, PoolState, Target};
use crate::Sample;

const KEEP: usize = 3600;
const NAMES: [&str; 6] = ["running", "booting", "busy", "busy_ratio", "cpu", "memory"];

pub struct MembersSource {
    target: Arc<dyn Target>,
    history: Mutex<(i64, HashMap<&'static str, VecDeque<Sample>>)>,
}

/// The readings of one pool state.
pub fn readings(s: &PoolState) -> [(&'static str, Option<f64>); 6] {
    let active: Vec<_> = s.members.iter().filter(|m| m.state == MemberState::Active).collect();
    let cpus: Vec<f64> = active.iter().filter_map(|m| m.cpu_percent).collect();
    let running = s.running() as f64;
    [
        ("running", Some(running)),
        ("booting", Some(s.booting() as f64)),
        ("busy", Some(s.busy() as f64)),
        ("busy_ratio", (running > 0.0).then(|| s.busy() as f64 / running)),
        ("cpu", (!cpus.is_empty()).then(|| cpus.iter().sum::<f64>() / cpus.len() as f64)),
        ("memory", Some(s.members.iter().filter_map(|m| m.memory_bytes).sum::<u64>() as f64)),
    ]
}

impl MembersSource {
    pub fn new(target: Arc<dyn Target>) -> Self {
        Self { target, history: Mutex::new((i64::MIN, HashMap::new())) }
    }
}

#[async_trait]
impl MetricSource for MembersSource {
    fn kind(&self) -> &'static str {
        "pool"
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        if !NAMES.contains(&query) {
            return Err(MetricError::Unknown { source_kind: "pool", query: query.into(), hint: format!("; use one of {}", NAMES.join(", ")) });
        }
        let needs_reading = self.history.lock().unwrap().0 < window.end;
        if needs_reading {
            let state = self.target.state().await.map_err(|e| MetricError::Unreachable { source_kind: "pool", detail: e.to_string() })?;
            let mut h = self.history.lock().unwrap();
            if h.0 < window.end {
                h.0 = window.end;
                for (name, value) in readings(&state) {
                    if let Some(value) = value {
                        let ring = h.1.entry(name).or_default();
                        if ring.len() == KEEP {
                            ring.pop_front();
                        }
                        ring.push_back(Sample { at: window.end, value });
                    }
                }
            }
        }
        let h = self.history.lock().unwrap();
        Ok(h.1.get(query).map(|r| tidy(r.iter().copied().collect(), window)).unwrap_or_default())
    }
}
