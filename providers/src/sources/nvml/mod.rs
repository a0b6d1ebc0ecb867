//! `nvml`: NVIDIA GPUs through the driver's management library.
//!
//! Series, summed (or averaged, or the hottest) over every GPU, or for one
//! GPU with `{gpu=N}`:
//!
//! | query | value |
//! |---|---|
//! | `memory_free_gib`, `memory_used_gib`, `memory_total_gib` | GPU memory, GiB (summed); `_mib` for MiB, as `gpu-memory` reads it |
//! | `utilization`, `memory_utilization` | percent busy (mean over GPUs) |
//! | `temperature` | °C (the hottest GPU) |
//! | `gpus` | how many GPUs answer |
//! | `process_memory_gib` | GPU memory held by processes (summed), or by one with `{pid=N}` |
//!
//! Where no NVIDIA driver is present, or a GPU disappears, a query fails
//! with the driver's reason ("NVML not available: ...") and
//! [`MetricSource::status`] says so: the strategies that need the series
//! abstain, the pool's others decide, and the host keeps running and tries
//! again at the next tick.

mod reading;

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

pub use reading::{GpuProcess, GpuReading, NvmlProbe, Probe, Recorded};

use crate::sources::{MetricError, MetricSource, SourceStatus, Window, tidy};
use crate::Sample;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Readings kept: an hour of one-second ticks.
const KEEP: usize = 3600;

/// A series and which GPU or process it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    MemoryFree,
    MemoryUsed,
    MemoryTotal,
    Utilization,
    MemoryUtilization,
    Temperature,
    Gpus,
    ProcessMemory,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Query {
    series: Series,
    gpu: Option<u32>,
    pid: Option<u32>,
    /// Bytes per unit of a memory series (GiB or MiB).
    unit: f64,
}

const NAMES: &str = "memory_free_gib, memory_used_gib, memory_total_gib, utilization, memory_utilization, temperature, gpus, process_memory_gib (memory also in _mib; each optionally {gpu=N}; process_memory_gib also {pid=N})";
const MIB: f64 = 1024.0 * 1024.0;

fn parse(query: &str) -> Result<Query, String> {
    let (name, selector) = match query.split_once('{') {
        Some((n, rest)) => (n.trim(), Some(rest.strip_suffix('}').ok_or("a selector ends with `}`")?)),
        None => (query.trim(), None),
    };
    let (base, unit) = match name.strip_suffix("_mib") {
        Some(b) => (format!("{b}_gib"), MIB),
        None => (name.to_owned(), GIB),
    };
    let series = match base.as_str() {
        "memory_free_gib" => Series::MemoryFree,
        "memory_used_gib" => Series::MemoryUsed,
        "memory_total_gib" => Series::MemoryTotal,
        "utilization" => Series::Utilization,
        "memory_utilization" => Series::MemoryUtilization,
        "temperature" => Series::Temperature,
        "gpus" => Series::Gpus,
        "process_memory_gib" => Series::ProcessMemory,
        _ => return Err(format!("no series `{name}`; use {NAMES}")),
    };
    if unit == MIB && !matches!(series, Series::MemoryFree | Series::MemoryUsed | Series::MemoryTotal | Series::ProcessMemory) {
        return Err(format!("no series `{name}`; use {NAMES}"));
    }
    let mut q = Query { series, gpu: None, pid: None, unit };
    for part in selector.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("`{part}`: a selector is key=value"))?;
        let n: u32 = value.trim().trim_matches('"').parse().map_err(|_| format!("`{part}`: {} must be a whole number", key.trim()))?;
        match key.trim() {
            "gpu" => q.gpu = Some(n),
            "pid" if series == Series::ProcessMemory => q.pid = Some(n),
            other => return Err(format!("`{other}` is not a selector of `{name}`; use gpu{}", if series == Series::ProcessMemory { " or pid" } else { "" })),
        }
    }
    Ok(q)
}

/// The value of `q` in one reading; `None` when it has nothing to say
/// (the GPU is not there, no utilization reading).
fn value(q: &Query, gpus: &[GpuReading]) -> Option<f64> {
    let picked: Vec<&GpuReading> = gpus.iter().filter(|g| q.gpu.is_none_or(|i| g.index == i)).collect();
    if picked.is_empty() && q.series != Series::Gpus {
        return None;
    }
    let sum = |f: &dyn Fn(&GpuReading) -> u64| picked.iter().map(|g| f(g) as f64).sum::<f64>();
    let mean = |f: &dyn Fn(&GpuReading) -> Option<u32>| {
        let v: Vec<f64> = picked.iter().filter_map(|g| f(g)).map(f64::from).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    match q.series {
        Series::MemoryFree => Some(sum(&|g| g.memory_free_bytes) / q.unit),
        Series::MemoryUsed => Some(sum(&|g| g.memory_used_bytes) / q.unit),
        Series::MemoryTotal => Some(sum(&|g| g.memory_total_bytes) / q.unit),
        Series::Utilization => mean(&|g| g.utilization_percent),
        Series::MemoryUtilization => mean(&|g| g.memory_utilization_percent),
        Series::Temperature => picked.iter().filter_map(|g| g.temperature_celsius).max().map(f64::from),
        Series::Gpus => Some(picked.len() as f64),
        Series::ProcessMemory => {
            let held = picked.iter().flat_map(|g| &g.processes).filter(|p| q.pid.is_none_or(|pid| p.pid == pid)).filter_map(|p| p.used_bytes);
            Some(held.map(|b| b as f64).sum::<f64>() / q.unit)
        }
    }
}

struct History {
    readings: VecDeque<(i64, Vec<GpuReading>)>,
    /// Why the last read failed, if it did.
    error: Option<String>,
}

/// The `nvml` metric source: reads the GPUs at most once per tick time and
/// keeps an hour of readings for windows.
pub struct NvmlSource {
    probe: Box<dyn Probe>,
    history: Mutex<History>,
}

impl NvmlSource {
    /// The source on the real driver.
    pub fn new() -> Self {
        Self::with_probe(Box::new(NvmlProbe::new()))
    }

    pub fn with_probe(probe: Box<dyn Probe>) -> Self {
        Self { probe, history: Mutex::new(History { readings: VecDeque::new(), error: None }) }
    }

    /// Read the GPUs for time `at`, unless a reading for `at` or later is
    /// already there (every pool querying at one tick shares one read).
    pub fn sample(&self, at: i64) -> Result<(), MetricError> {
        let mut h = self.history.lock().unwrap();
        if h.readings.back().is_some_and(|(t, _)| *t >= at) {
            return Ok(());
        }
        match self.probe.read() {
            Ok(gpus) => {
                if h.readings.len() == KEEP {
                    h.readings.pop_front();
                }
                h.readings.push_back((at, gpus));
                h.error = None;
                Ok(())
            }
            Err(e) => {
                if h.error.as_deref() != Some(&e) {
                    tracing::warn!(source = "nvml", "{e}");
                }
                h.error = Some(e.clone());
                Err(MetricError::Unreachable { source_kind: "nvml", detail: e })
            }
        }
    }

    /// The newest reading, if any.
    pub fn latest(&self) -> Option<Vec<GpuReading>> {
        self.history.lock().unwrap().readings.back().map(|(_, g)| g.clone())
    }
}

impl Default for NvmlSource {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl MetricSource for NvmlSource {
    fn kind(&self) -> &'static str {
        "nvml"
    }

    async fn query(&self, query: &str, window: Window) -> Result<Vec<Sample>, MetricError> {
        let q = parse(query).map_err(|hint| MetricError::Unknown { source_kind: "nvml", query: query.into(), hint: format!(": {hint}") })?;
        // A failed read fails the query: stale readings would hide a GPU
        // that is gone.
        self.sample(window.end)?;
        let h = self.history.lock().unwrap();
        let samples = h.readings.iter().filter(|(at, _)| *at >= window.start()).filter_map(|(at, gpus)| value(&q, gpus).map(|value| Sample { at: *at, value })).collect();
        Ok(tidy(samples, window))
    }

    fn status(&self) -> SourceStatus {
        let h = self.history.lock().unwrap();
        match (&h.error, h.readings.back()) {
            (Some(e), _) => SourceStatus::Unavailable(e.clone()),
            (None, Some((_, gpus))) => SourceStatus::Up(format!("{} GPU{}", gpus.len(), if gpus.len() == 1 { "" } else { "s" })),
            (None, None) => SourceStatus::Unknown,
        }
    }
}

#[cfg(test)]
mod tests;
