//! What one look at the GPUs returns, and the seam it comes through.
//!
//! Why a seam: NVML needs an NVIDIA driver, which CI machines do not have.
//! Everything the source does with a reading (sum, pick a GPU, a process,
//! turn bytes into GiB) is a pure function of [`GpuReading`]s, so it is
//! tested on recorded readings ([`Recorded`], JSON written from a real GPU
//! by `cargo run -p scalewise-providers --example gpu_readings`), while
//! [`NvmlProbe`] is the thin part that
//! calls the driver and is tested where a GPU is.

use std::sync::Mutex;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use serde::{Deserialize, Serialize};

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub memory_free_bytes: u64,
    /// Percent of the last sample period a kernel ran.
    pub utilization_percent: Option<u32>,
    /// Percent of the last sample period memory was read or written.
    pub memory_utilization_percent: Option<u32>,
    pub temperature_celsius: Option<u32>,
    /// Compute and graphics processes with the GPU memory each holds.
    #[serde(default)]
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// `None` where the driver does not say (WDDM, some MIG setups).
    pub used_bytes: Option<u64>,
}

/// Something that can read the GPUs.
pub trait Probe: Send + Sync {
    /// Every GPU now, or why not (no driver, a GPU gone).
    fn read(&self) -> Result<Vec<GpuReading>, String>;
}

/// NVML through the driver. It is loaded at the first read, and again
/// after a failure, so a driver installed or a GPU reset while the host
/// runs is picked up without a restart.
#[derive(Default)]
pub struct NvmlProbe {
    nvml: Mutex<Option<Nvml>>,
}

impl NvmlProbe {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Probe for NvmlProbe {
    fn read(&self) -> Result<Vec<GpuReading>, String> {
        let mut guard = self.nvml.lock().unwrap();
        if guard.is_none() {
            *guard = Some(Nvml::init().map_err(|e| format!("NVML not available: {e} (is the NVIDIA driver installed and loaded?)"))?);
        }
        let nvml = guard.as_ref().expect("just set");
        let result = read_all(nvml);
        if result.is_err() {
            // A GPU that fell off the bus, a driver reload: start afresh next time.
            *guard = None;
        }
        result
    }
}

fn read_all(nvml: &Nvml) -> Result<Vec<GpuReading>, String> {
    let count = nvml.device_count().map_err(|e| format!("NVML cannot count GPUs: {e}"))?;
    (0..count)
        .map(|index| {
            let gpu = |what: &str, e: nvml_wrapper::error::NvmlError| format!("GPU {index}: cannot read {what}: {e}");
            let d = nvml.device_by_index(index).map_err(|e| gpu("its handle", e))?;
            let memory = d.memory_info().map_err(|e| gpu("memory", e))?;
            let utilization = d.utilization_rates().ok();
            let mut processes = Vec::new();
            for p in d.running_compute_processes().unwrap_or_default().into_iter().chain(d.running_graphics_processes().unwrap_or_default()) {
                let used_bytes = match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                };
                if !processes.iter().any(|q: &GpuProcess| q.pid == p.pid) {
                    processes.push(GpuProcess { pid: p.pid, used_bytes });
                }
            }
            Ok(GpuReading {
                index,
                name: d.name().unwrap_or_default(),
                uuid: d.uuid().unwrap_or_default(),
                memory_total_bytes: memory.total,
                memory_used_bytes: memory.used,
                memory_free_bytes: memory.free,
                utilization_percent: utilization.as_ref().map(|u| u.gpu),
                memory_utilization_percent: utilization.as_ref().map(|u| u.memory),
                temperature_celsius: d.temperature(TemperatureSensor::Gpu).ok(),
                processes,
            })
        })
        .collect()
}

/// One read's answer: every GPU, or why not.
pub type Read = Result<Vec<GpuReading>, String>;

/// Readings played back in order, one list per read, the last one
/// repeated; an entry that is an error string plays a failed read.
pub struct Recorded {
    script: Mutex<(usize, Vec<Read>)>,
}

impl Recorded {
    pub fn new(script: Vec<Read>) -> Self {
        Self { script: Mutex::new((0, script)) }
    }

    /// Readings as the `gpu_readings` example writes them: a JSON array of GPUs.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let gpus: Vec<GpuReading> = serde_json::from_str(text).map_err(|e| format!("recorded GPU readings: {e}"))?;
        Ok(Self::new(vec![Ok(gpus)]))
    }
}

impl Probe for Recorded {
    fn read(&self) -> Result<Vec<GpuReading>, String> {
        let mut s = self.script.lock().unwrap();
        let (next, script) = &mut *s;
        let i = (*next).min(script.len().saturating_sub(1));
        *next += 1;
        script.get(i).cloned().unwrap_or_else(|| Err("no recorded readings".into()))
    }
}
