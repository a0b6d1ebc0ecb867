//! The built-in demo: a work queue served by the host, a load generator
//! that fills it following a compressed day (night trough, morning ramp,
//! afternoon peak) with a flash spike, and a worker (`scalewise demo
//! worker`) that the local provider runs as the pool's members.
//!
//! The generator pushes the queue's depth into the demo pool's push source,
//! exactly as an application would through `POST /pools/{id}/metrics`, so
//! the demo exercises the same paths as production.

pub mod worker;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scalewise_providers::Sample;
use scalewise_providers::sources::push::PushSource;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// The pool whose push source receives `queue_depth`.
    pub pool: String,
    /// Length of one compressed day.
    #[serde(default = "default_day")]
    pub day_secs: u64,
    /// Jobs per second at the daily peak.
    #[serde(default = "default_peak")]
    pub peak_rate: f64,
    /// Jobs per second at night.
    #[serde(default = "default_base")]
    pub base_rate: f64,
    /// Milliseconds of work per job.
    #[serde(default = "default_job")]
    pub job_ms: u64,
    /// The flash spike: when in the day it starts (0..1), how long it lasts
    /// (fraction of the day), and how many times the rate it multiplies.
    #[serde(default = "default_spike_at")]
    pub spike_at: f64,
    #[serde(default = "default_spike_len")]
    pub spike_len: f64,
    #[serde(default = "default_spike_x")]
    pub spike_factor: f64,
}

fn default_day() -> u64 {
    180
}
fn default_peak() -> f64 {
    12.0
}
fn default_base() -> f64 {
    1.0
}
fn default_job() -> u64 {
    400
}
fn default_spike_at() -> f64 {
    0.15
}
fn default_spike_len() -> f64 {
    0.1
}
fn default_spike_x() -> f64 {
    3.0
}

impl DemoConfig {
    /// Arrival rate (jobs/s) at `t` seconds into the run.
    pub fn rate(&self, t: f64) -> f64 {
        let phase = (t / self.day_secs as f64).fract();
        // A raised cosine: the night trough at phase 0, the peak at 0.5.
        let daily = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * phase).cos();
        let mut rate = self.base_rate + (self.peak_rate - self.base_rate) * daily;
        if phase >= self.spike_at && phase < self.spike_at + self.spike_len {
            rate *= self.spike_factor;
        }
        rate
    }
}

/// A job handed to a worker.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub id: u64,
    pub work_ms: u64,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Job>,
    next: u64,
    taken: u64,
}

/// The work queue the demo workers drain.
#[derive(Default)]
pub struct Queue {
    state: Mutex<QueueState>,
}

impl Queue {
    pub fn take(&self) -> Option<Job> {
        let mut s = self.state.lock().unwrap();
        let job = s.waiting.pop_front();
        if job.is_some() {
            s.taken += 1;
        }
        job
    }

    pub fn depth(&self) -> usize {
        self.state.lock().unwrap().waiting.len()
    }

    fn add(&self, n: usize, work_ms: u64) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            let id = s.next;
            s.next += 1;
            // A bounded queue: past 10,000 waiting jobs, new ones are shed.
            if s.waiting.len() < 10_000 {
                s.waiting.push_back(Job { id, work_ms });
            }
        }
    }
}

/// Run the load generator until the task is dropped: every 250 ms, add the
/// jobs that arrived and push the queue's depth to the pool.
pub fn start(config: DemoConfig, queue: Arc<Queue>, push: Arc<PushSource>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut owed = 0.0;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let t = started.elapsed().as_secs_f64();
            owed += config.rate(t) * 0.25;
            let n = owed.floor();
            owed -= n;
            queue.add(n as usize, config.job_ms);
            let at = scalewise_providers::now_ms();
            let _ = push.push("queue_depth", &[Sample { at, value: queue.depth() as f64 }]);
            let _ = push.push("arrival_rate", &[Sample { at, value: config.rate(t) }]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_has_a_trough_a_peak_and_a_spike() {
        let c = DemoConfig { pool: "d".into(), day_secs: 100, peak_rate: 10.0, base_rate: 1.0, job_ms: 1, spike_at: 0.15, spike_len: 0.1, spike_factor: 3.0 };
        assert!((c.rate(0.0) - 1.0).abs() < 1e-9, "night");
        assert!((c.rate(50.0) - 10.0).abs() < 1e-9, "peak");
        let (before, during) = (c.rate(14.0), c.rate(20.0));
        assert!(during > before * 2.0, "spike {during} vs {before}");
        assert!((0..1000).all(|i| c.rate(i as f64 / 10.0) >= 1.0));
    }
}
