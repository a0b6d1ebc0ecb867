//! Readings of this machine from /proc: `cpu` (percent of all cores busy),
//! `memory` (percent of memory in use), `load1` (one-minute load average per
//! core).
//!
//! /proc gives instantaneous values (and CPU counters), not history, so the
//! source takes a reading whenever it is asked and keeps the last readings in
//! a ring; a window is answered from the ring.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::sources::{MetricError, MetricSource, Window, tidy};
use crate::Sample;

const KEEP: usize = 3600;

#[derive(Default)]
struct History {
    /// (busy, total) jiffies at the last reading, for the CPU delta.
    last_cpu: Option<(u64, u64)>,
    cpu: VecDeque<Sample>,
    memory: VecDeque<Sample>,
    load1: VecDeque<Sample>,
}

#[derive(Default)]
pub struct ProcSource {
    history: Mutex<History>,
}

/// `cpu` line of /proc/stat as (busy, total) jiffies.
pub fn parse_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4]; // idle + iowait
    Some((total - idle, total))
}

/// Percent of memory in use, from /proc/meminfo.
pub fn parse_memory(meminfo: &str) -> Option<f64> {
    let field = |name: &str| -> Option<f64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let (total, available) = (field("MemTotal:")?, field("MemAvailable:")?);
    (total > 0.0).then(|| 100.0 * (1.0 - available / total))
}

/// Cores this process may use.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

impl ProcSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Take a reading now and add it to the history.
    pub fn sample(&self, at: i64) -> Result<(), MetricError> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| MetricError::Unreachable { source_kind: "host", detail: format!("{p}: {e}") });
        let stat = read("/proc/stat")?;
        let meminfo = read("/proc/meminfo")?;
        let loadavg = read("/proc/loadavg")?;
        let garbage = |what: &str| MetricError::Garbage { source_kind: "host", query: what.into(), detail: "unexpected /proc format".into() };
        let cpu = parse_cpu(&stat).ok_or_else(|| garbage("cpu"))?;
        let memory = parse_memory(&meminfo).ok_or_else(|| garbage("memory"))?;
        let load1: f64 = loadavg.split_whitespace().next().and_then(|x| x.parse().ok()).ok_or_else(|| garbage("load1"))?;
        let mut h = self.history.lock().unwrap();
        if let Some((busy0, total0)) = h.last_cpu.replace(cpu) {
            let (db, dt) = (cpu.0.saturating_sub(busy0), cpu.1.saturating_sub(total0));
            if dt > 0 {
                push(&mut h.cpu, Sample { at, value: 100.0 * db as f64 / dt as f64 });
            }
        }
        push(&mut h.memory, Sample { at, value: memory });
        push(&mut h.load1, Sample { at, value: load1 / cores() });
        Ok(())
    }
}

fn push(ring: &mut VecDeque<Sample>, s: Sample) {
    if ring.back().is_some_and(|b| b.at >= s.at) {
        return;
    }
    if ring.len() == KEEP {
        ring.pop_front();
    }
    ring.push_back(s);
}

#[async_trait]
impl MetricSource for ProcSource {
    fn kind(&self) -> &'static str {
        "host"
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        self.sample(window.end)?;
        let h = self.history.lock().unwrap();
        let ring = match query {
            "cpu" => &h.cpu,
            "memory" => &h.memory,
            "load1" => &h.load1,
            _ => {
                return Err(MetricError::Unknown { source_kind: "host", query: query.into(), hint: "; use cpu, memory or load1".into() });
            }
        };
        Ok(tidy(ring.iter().copied().collect(), window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n";
        assert_eq!(parse_cpu(stat), Some((150, 1000)));
        let meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";
        assert_eq!(parse_memory(meminfo), Some(75.0));
        assert_eq!(parse_cpu("garbage"), None);
    }

    #[tokio::test]
    async fn real_proc_gives_cpu_after_two_readings() {
        let h = ProcSource::new();
        let w = |end| Window { end, length_ms: 10_000, step_ms: 1000 };
        h.query("memory", w(1000)).await.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let cpu = h.query("cpu", w(2000)).await.unwrap();
        assert_eq!(cpu.len(), 1);
        assert!((0.0..=100.0).contains(&cpu[0].value));
        let mem = h.query("memory", w(2000)).await.unwrap();
        assert!(mem.iter().all(|s| s.value > 0.0 && s.value < 100.0));
        assert!(matches!(h.query("disk", w(3000)).await, Err(MetricError::Unknown { .. })));
    }
}
