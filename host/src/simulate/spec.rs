//! The simulation file: the environment, the traces and the policy sets.
//!
//! ```toml
//! [environment]            # what the simulated provider is like
//! step_secs = 60           # how long one trace row lasts
//! capacity = 40.0          # load one instance serves at its target utilization
//! boot_steps = 2
//!
//! [[traces]]
//! path = "../../data/traces/nasa_http_1995_per_minute.csv"
//!
//! [[sets]]
//! name = "hpa"
//! config = "hpa.toml"      # a scalewise config with one pool
//! ```
//!
//! Paths are relative to the file. A set is an ordinary host config, so an
//! operator can point a set at the config in production and ask what it
//! would have done; its pool's provider is replaced by the simulated fleet.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::fleet::Storm;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSpec {
    #[serde(default)]
    pub environment: Environment,
    #[serde(default)]
    pub traces: Vec<TraceSpec>,
    #[serde(default)]
    pub sets: Vec<SetSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(default = "d_step")]
    pub step_secs: u64,
    /// Load one instance serves per step at its target utilization.
    #[serde(default = "d_capacity")]
    pub capacity: f64,
    /// The utilization an instance shows when it serves `capacity`.
    #[serde(default = "d_target")]
    pub target_utilization: f64,
    #[serde(default = "d_boot")]
    pub boot_steps: u64,
    #[serde(default)]
    pub drain_steps: u64,
    /// On-demand price per instance-hour.
    #[serde(default = "d_hourly")]
    pub hourly: f64,
    /// Billed time is rounded up to multiples of this, per instance.
    #[serde(default = "d_billing")]
    pub billing_secs: u64,
    #[serde(default)]
    pub spot_hourly: Option<f64>,
    #[serde(default)]
    pub spot_interruptions_per_hour: f64,
    /// Periods (steps `[from, to)`) when spot interruptions run at another
    /// rate; the pool's `spot_interruption_rate` metric shows the rate.
    #[serde(default)]
    pub spot_storms: Vec<Storm>,
    /// The most instances the provider account may run at once; scale-ups
    /// beyond it are limited, and the decision says so.
    #[serde(default)]
    pub quota: Option<u32>,
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Instances running at step 0; default: what the first step needs.
    #[serde(default)]
    pub initial: Option<u32>,
    /// Set the capacity so that the trace's busiest step needs this many
    /// instances (replaces `capacity`; needs a file, read twice).
    #[serde(default)]
    pub peak_instances: Option<u32>,
    /// The share of each trace, from its start, that policies may learn
    /// from but that is not scored (elasticity, cost, oracle); needs a file.
    #[serde(default)]
    pub warmup: f64,
}

fn d_step() -> u64 {
    60
}
fn d_capacity() -> f64 {
    100.0
}
fn d_target() -> f64 {
    0.7
}
fn d_boot() -> u64 {
    2
}
fn d_hourly() -> f64 {
    0.1
}
fn d_billing() -> u64 {
    60
}
fn d_seed() -> u64 {
    1
}

impl Default for Environment {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    pub path: PathBuf,
    /// Default: the file name without its extension.
    #[serde(default)]
    pub name: Option<String>,
    /// Per-trace overrides of the environment.
    #[serde(default)]
    pub capacity: Option<f64>,
    #[serde(default)]
    pub step_secs: Option<u64>,
    #[serde(default)]
    pub boot_steps: Option<u64>,
    #[serde(default)]
    pub drain_steps: Option<u64>,
    #[serde(default)]
    pub peak_instances: Option<u32>,
    #[serde(default)]
    pub warmup: Option<f64>,
}

impl TraceSpec {
    /// A trace with the environment's settings.
    pub fn at(path: PathBuf) -> Self {
        Self { path, name: None, capacity: None, step_secs: None, boot_steps: None, drain_steps: None, peak_instances: None, warmup: None }
    }

    pub fn name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if self.path == Path::new("-") {
            return "stdin".into();
        }
        self.path.file_stem().map_or("trace".into(), |s| s.to_string_lossy().into_owned())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    pub name: String,
    /// A scalewise config; its one pool (or the one named `pool`) is the set.
    #[serde(default)]
    pub config: Option<PathBuf>,
    #[serde(default)]
    pub pool: Option<String>,
    /// No policies: a fixed capacity, a number or `"peak"` (what the trace's
    /// busiest step needs, known in advance).
    #[serde(default)]
    pub fixed: Option<Fixed>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Fixed {
    Count(u32),
    Named(String),
}

impl SimSpec {
    /// Read, check, and resolve paths against the file's directory.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = crate::config::read_text(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let de = toml::Deserializer::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut spec: SimSpec = serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner().message()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for t in &mut spec.traces {
            t.path = base.join(&t.path);
        }
        for s in &mut spec.sets {
            s.config = s.config.take().map(|c| base.join(c));
        }
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(format!("{}: {} problem(s)\n  {}", path.display(), problems.len(), problems.join("\n  ")));
        }
        Ok(spec)
    }

    /// Every problem, each with its field path.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let e = &self.environment;
        if e.step_secs == 0 {
            p.push("environment.step_secs: must be at least 1".into());
        }
        if !(e.capacity.is_finite() && e.capacity > 0.0) {
            p.push(format!("environment.capacity: must be a positive number, got {}", e.capacity));
        }
        if !(e.target_utilization > 0.0 && e.target_utilization <= 1.0) {
            p.push(format!("environment.target_utilization: must be in (0, 1], got {}", e.target_utilization));
        }
        if !(e.hourly.is_finite() && e.hourly >= 0.0) {
            p.push(format!("environment.hourly: must be a price ≥ 0, got {}", e.hourly));
        }
        if e.billing_secs == 0 {
            p.push("environment.billing_secs: must be at least 1 (1 means per-second billing)".into());
        }
        if e.spot_hourly.is_some_and(|h| !(h.is_finite() && h >= 0.0)) {
            p.push("environment.spot_hourly: must be a price ≥ 0".into());
        }
        if !(e.spot_interruptions_per_hour.is_finite() && e.spot_interruptions_per_hour >= 0.0) {
            p.push("environment.spot_interruptions_per_hour: must be ≥ 0".into());
        }
        for (i, storm) in e.spot_storms.iter().enumerate() {
            if storm.from >= storm.to || !(storm.interruptions_per_hour.is_finite() && storm.interruptions_per_hour >= 0.0) {
                p.push(format!("environment.spot_storms[{i}]: needs from < to and interruptions_per_hour ≥ 0"));
            }
        }
        if e.quota == Some(0) {
            p.push("environment.quota: must be at least 1 instance".into());
        }
        if let (Some(q), Some(i)) = (e.quota, e.initial)
            && i > q
        {
            p.push(format!("environment.initial: {i} instances at the start is above the quota of {q}"));
        }
        if e.peak_instances == Some(0) {
            p.push("environment.peak_instances: must be at least 1".into());
        }
        if !(0.0..1.0).contains(&e.warmup) {
            p.push(format!("environment.warmup: a share of the trace in [0, 1), got {}", e.warmup));
        }
        for (i, t) in self.traces.iter().enumerate() {
            if t.peak_instances == Some(0) {
                p.push(format!("traces[{i}].peak_instances: must be at least 1"));
            }
            if t.warmup.is_some_and(|w| !(0.0..1.0).contains(&w)) {
                p.push(format!("traces[{i}].warmup: a share of the trace in [0, 1)"));
            }
            if t.capacity.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                p.push(format!("traces[{i}].capacity: must be a positive number"));
            }
            if t.step_secs == Some(0) {
                p.push(format!("traces[{i}].step_secs: must be at least 1"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sets.iter().enumerate() {
            if !names.insert(&s.name) {
                p.push(format!("sets[{i}].name: `{}` is used by another set", s.name));
            }
            match (&s.config, &s.fixed) {
                (None, None) => p.push(format!("sets[{i}]: give `config` (a scalewise config) or `fixed` (a count or \"peak\")")),
                (Some(_), Some(_)) => p.push(format!("sets[{i}]: `config` and `fixed` exclude each other")),
                (_, Some(Fixed::Named(n))) if n != "peak" => p.push(format!("sets[{i}].fixed: a count or \"peak\", got \"{n}\"")),
                _ => {}
            }
        }
        if self.sets.is_empty() {
            p.push("sets: no policy sets to compare; add [[sets]] entries".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_fields() {
        let spec: SimSpec = toml::from_str(
            "[environment]\ncapacity = -1\nwarmup = 1.5\npeak_instances = 0\n[[traces]]\npath = \"t.csv\"\nwarmup = -0.1\n[[sets]]\nname = \"a\"\n[[sets]]\nname = \"a\"\nfixed = \"max\"\n",
        )
        .unwrap();
        let p = spec.problems().join("\n");
        assert!(p.contains("environment.capacity"), "{p}");
        assert!(p.contains("environment.warmup: a share of the trace in [0, 1), got 1.5"), "{p}");
        assert!(p.contains("environment.peak_instances"), "{p}");
        assert!(p.contains("traces[0].warmup"), "{p}");
        assert!(p.contains("sets[0]: give `config`"), "{p}");
        assert!(p.contains("sets[1].name"), "{p}");
        assert!(p.contains("sets[1].fixed"), "{p}");
    }
}
