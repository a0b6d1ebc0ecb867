//! GPU memory: never start more model workers than the GPUs can hold.
//!
//! A model worker that does not fit fails at load time (out of memory) or,
//! worse, evicts a neighbour. Each GPU holds
//! `floor((free − safety_buffer) / need)` more workers, where `free` is the
//! GPU's free memory as its metric reports it and `need` is the memory one
//! worker of the configured model takes (from the `models` table, so
//! switching the model is one setting). The ceiling is the pool's running
//! workers plus what fits on every GPU, less the workers still booting
//! (launched, their memory not taken yet).
//!
//! Within that ceiling the workload decides: with `workload_metric` set, the
//! pool wants `ceil(value / per_worker)`; without it, as many as fit. When
//! the pool's own minimum is above the ceiling the policy abstains (the host
//! holds) rather than propose workers that cannot load.
//!
//! Settings:
//! ```toml
//! free_metric = "gpu_free_mib"   # one series per GPU: gpu_free_mib, or gpu_free_mib.0, gpu_free_mib.1, ...
//! safety_buffer_mib = 1024       # per GPU
//! model = "llama-3-8b-q4"
//! models = { "llama-3-8b-q4" = 6144, "llama-3-70b-fp16" = 143360 }
//! workload_metric = "queue_depth"
//! per_worker = 4.0
//! ```

use std::collections::BTreeMap;

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Free memory per GPU, in MiB: the series named this, or this plus a
    /// `.suffix` (one per GPU).
    #[serde(default = "d_free")]
    pub free_metric: String,
    #[serde(default)]
    pub safety_buffer_mib: f64,
    /// The model the workers run, from `models`.
    pub model: String,
    /// Memory one worker of each model needs, in MiB.
    pub models: BTreeMap<String, f64>,
    #[serde(default)]
    pub workload_metric: Option<String>,
    #[serde(default = "d_per_worker")]
    pub per_worker: f64,
}

fn d_free() -> String {
    "gpu_free_mib".into()
}
fn d_per_worker() -> f64 {
    1.0
}

/// How many more workers of `need` MiB fit on GPUs with `free` MiB each.
pub fn fits(free: &[f64], buffer: f64, need: f64) -> u64 {
    free.iter().map(|f| if f.is_finite() && *f > buffer { ((f - buffer) / need).floor() as u64 } else { 0 }).sum()
}

pub struct GpuMemory;

impl Strategy for GpuMemory {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        for (name, need) in &s.models {
            if !(need.is_finite() && *need > 0.0) {
                return Err(format!("models.{name}: memory per worker must be a positive number of MiB, got {need}"));
            }
        }
        if !s.models.contains_key(&s.model) {
            let known: Vec<&str> = s.models.keys().map(String::as_str).collect();
            return Err(format!("model: `{}` is not in models (known: {})", s.model, known.join(", ")));
        }
        if !(s.safety_buffer_mib.is_finite() && s.safety_buffer_mib >= 0.0) {
            return Err(format!("safety_buffer_mib: must be a number ≥ 0, got {}", s.safety_buffer_mib));
        }
        if !(s.per_worker.is_finite() && s.per_worker > 0.0) {
            return Err(format!("per_worker: must be a positive number, got {}", s.per_worker));
        }
        Ok(())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let need = s.models[&s.model];
        let prefix = format!("{}.", s.free_metric);
        let free: Vec<f64> = input
            .metrics
            .iter()
            .filter(|m| m.name == s.free_metric || m.name.starts_with(&prefix))
            .filter_map(|m| m.last())
            .collect();
        if free.is_empty() {
            return Err(format!("no samples of `{}` (free GPU memory, MiB)", s.free_metric));
        }
        let pool = &input.pool;
        let more = fits(&free, s.safety_buffer_mib, need).saturating_sub(u64::from(pool.booting));
        let ceiling = u64::from(pool.running).saturating_add(more).min(u64::from(u32::MAX)) as f64;
        let fit = format!(
            "{} GPU(s) with {:.0} MiB free hold {more} more `{}` worker(s) of {need:.0} MiB beyond {} running (buffer {:.0} MiB each, {} booting)",
            free.len(),
            free.iter().sum::<f64>(),
            s.model,
            pool.running,
            s.safety_buffer_mib,
            pool.booting
        );
        if f64::from(pool.min) > ceiling {
            return Err(format!("pool min {} is more than the GPUs hold ({ceiling}): {fit}", pool.min));
        }
        let (want, why) = match &s.workload_metric {
            Some(name) => {
                let value = input.metric(name).and_then(|m| m.last()).ok_or_else(|| format!("no samples of `{name}`"))?;
                ((value / s.per_worker).ceil(), format!("{name} {value:.1} wants {} at {} per worker", (value / s.per_worker).ceil(), s.per_worker))
            }
            None => (ceiling, "no workload metric: as many as fit".to_owned()),
        };
        let desired = pool.clamp(want.min(ceiling)).min(ceiling);
        let limited = if want > ceiling { format!("; limited to {ceiling} by GPU memory") } else { String::new() };
        Ok(Proposal::new(desired, 1.0, format!("{why}{limited}; {fit}")))
    }
}

export_strategy!(GpuMemory);

#[cfg(test)]
mod tests;
