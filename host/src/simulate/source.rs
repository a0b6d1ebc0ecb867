//! What a simulated pool's metrics say: computed from the trace and the fleet.
//!
//! Policies in a simulation query metrics exactly as live ones do, through a
//! [`MetricSource`]. This one knows the recent steps' loads (the driver
//! appends each step's load before the pool decides) and reads the fleet's
//! running count at each step. Its series:
//! - `load`: the trace's value at the step;
//! - `utilization` (also `cpu`, `busy_ratio`): what a CPU gauge would show,
//!   `target_utilization · load / (running · capacity)`, at most 1; an
//!   instance serving exactly `capacity` shows the target utilization;
//! - `queue_depth`: the work arriving in the step in units of one
//!   instance's capacity (`load / capacity`), so that a backlog-per-worker
//!   strategy's `target_per_worker = 1` means "one step's worth per
//!   instance" on any trace;
//! - `running`, `booting`: the fleet's members.
//! - `spot_interruption_rate`: the spot market's interruptions per spot
//!   instance-hour (the environment's rate, or a storm's).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scalewise_providers::{MetricError, MetricSource, Sample, Window};

use super::fleet::SimFleet;

/// Series names a simulated pool's metrics may use.
pub const SERIES: &[&str] = &["load", "utilization", "cpu", "busy_ratio", "queue_depth", "running", "booting", "spot_interruption_rate"];
/// Steps of load kept for metric windows.
const KEPT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Series {
    Load,
    Backlog,
    Utilization,
    Running,
    Booting,
    SpotRate,
}

fn series(name: &str) -> Option<Series> {
    Some(match name {
        "load" => Series::Load,
        "queue_depth" => Series::Backlog,
        "utilization" | "cpu" | "busy_ratio" => Series::Utilization,
        "running" => Series::Running,
        "booting" => Series::Booting,
        "spot_interruption_rate" => Series::SpotRate,
        _ => return None,
    })
}

/// Whether a metric query names a series the simulator provides.
pub fn provides(query: &str) -> bool {
    series(query).is_some()
}

struct Loads {
    /// The step of `values[0]`.
    first: u64,
    values: VecDeque<f64>,
}

pub struct SimSource {
    loads: Mutex<Loads>,
    fleet: Arc<SimFleet>,
    origin_ms: i64,
    step_ms: i64,
    capacity: f64,
    target_utilization: f64,
}

impl SimSource {
    pub fn new(fleet: Arc<SimFleet>, origin_ms: i64, step_ms: i64, capacity: f64, target_utilization: f64) -> Self {
        let loads = Loads { first: 0, values: VecDeque::new() };
        Self { loads: Mutex::new(loads), fleet, origin_ms, step_ms, capacity, target_utilization }
    }

    /// The next step's load.
    pub fn append(&self, load: f64) {
        let mut l = self.loads.lock().unwrap();
        l.values.push_back(load);
        if l.values.len() > KEPT {
            l.values.pop_front();
            l.first += 1;
        }
    }

    /// What a utilization gauge shows at this load and running count.
    pub fn utilization(&self, load: f64, running: u32) -> f64 {
        if running == 0 {
            return if load > 0.0 { 1.0 } else { 0.0 };
        }
        (self.target_utilization * load / (running as f64 * self.capacity)).min(1.0)
    }
}

#[async_trait]
impl MetricSource for SimSource {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        let series = series(query).ok_or_else(|| MetricError::Unknown {
            source_kind: "simulated",
            query: query.into(),
            hint: format!("; the simulator provides {}", SERIES.join(", ")),
        })?;
        // Steps whose time is in (end - length, end].
        let last = (window.end - self.origin_ms).div_euclid(self.step_ms);
        let first = (window.start() - self.origin_ms).div_euclid(self.step_ms) + 1;
        let loads = self.loads.lock().unwrap();
        let mut out = Vec::new();
        for step in first.max(loads.first as i64)..=last {
            let Some(&load) = loads.values.get((step - loads.first as i64) as usize) else { break };
            let Some((running, booting)) = self.fleet.at(step as u64) else { continue };
            let value = match series {
                Series::Load => load,
                Series::Backlog => load / self.capacity,
                Series::Utilization => self.utilization(load, running),
                Series::Running => running as f64,
                Series::Booting => booting as f64,
                Series::SpotRate => self.fleet.spot_rate_at(step as u64),
            };
            out.push(Sample { at: self.origin_ms + step * self.step_ms, value });
        }
        Ok(out)
    }
}
