//! The tune file: the workload's history, the time split, the objective,
//! the baseline, the search budget and the candidate families.
//!
//! ```toml
//! [environment]                 # as in a simulation file
//! peak_instances = 100
//! boot_steps = 5
//!
//! [history]                     # one trace, as a simulation file's [[traces]]
//! path = "../../data/traces/nasa_http_1995_per_minute.csv"
//!
//! [split]
//! fit = 0.6                     # search on the first 60 %; choose and report on the rest
//! warmup = 0.2                  # of the whole trace: run, never scored
//!
//! [objective]
//! minimize = "theta_o"          # or "cost"
//! theta_u = "baseline"          # no more under-provisioning than the baseline
//! unserved = "baseline"         # ... nor unserved load; or a number (percent)
//!
//! [baseline]
//! config = "../simulate/hpa.toml"
//!
//! [search]
//! runs = 200                    # candidate runs on the fit part
//!
//! [[candidates]]
//! name = "hybrid"
//! config = "../simulate/hybrid.toml"
//! params = [
//!   { path = "settings.predictive.headroom", range = [0.0, 0.3] },
//!   { path = "guardrails.scale_down_stabilization_secs", range = [0, 900] },
//!   { path = "settings.predictive.floor_at_current", values = [true, false] },
//! ]
//! ```
//!
//! A param's `path` names a field of the candidate's pool table, as written
//! in its config: `min`, `guardrails.tolerance`, `settings.<policy>.<key>`
//! (a number in an array by its index: `settings.target-tracking.metrics.0.target`).
//! A `range` of two integers searches integers. Paths are relative to the
//! pool, so any numeric or listed setting of any policy is tunable without
//! the policy knowing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::simulate::spec::{Environment, TraceSpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    #[serde(default)]
    pub environment: Environment,
    pub history: TraceSpec,
    #[serde(default)]
    pub split: Split,
    #[serde(default)]
    pub objective: Objective,
    pub baseline: SetRef,
    #[serde(default)]
    pub search: Search,
    pub candidates: Vec<Family>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The share of the history, from its start, the search may see.
    #[serde(default = "d_fit")]
    pub fit: f64,
    /// The share of the history, from its start, run but never scored
    /// (policies that learn need it); scoring on the fit part starts here.
    #[serde(default = "d_warmup")]
    pub warmup: f64,
}

fn d_fit() -> f64 {
    0.6
}
fn d_warmup() -> f64 {
    0.2
}

impl Default for Split {
    fn default() -> Self {
        Self { fit: d_fit(), warmup: d_warmup() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Minimize {
    ThetaO,
    Cost,
}

impl Minimize {
    /// As the tables write it.
    pub fn name(self) -> &'static str {
        match self {
            Minimize::ThetaO => "θ_O %",
            Minimize::Cost => "cost",
        }
    }
}

/// A bound on a service-level figure: a number, or `"baseline"` (the
/// baseline's own figure on the same part of the history).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    At(f64),
    Named(Baseline),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    Baseline,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    #[serde(default = "d_minimize")]
    pub minimize: Minimize,
    /// θ_U, percent.
    #[serde(default)]
    pub theta_u: Option<Limit>,
    /// Unserved load, percent.
    #[serde(default)]
    pub unserved: Option<Limit>,
    /// τ_U, percent of the time.
    #[serde(default)]
    pub tau_u: Option<Limit>,
}

fn d_minimize() -> Minimize {
    Minimize::ThetaO
}

impl Default for Objective {
    fn default() -> Self {
        let baseline = Some(Limit::Named(Baseline::Baseline));
        Self { minimize: d_minimize(), theta_u: baseline, unserved: baseline, tau_u: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRef {
    pub config: PathBuf,
    #[serde(default)]
    pub pool: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// Candidate runs on the fit part (the held-back runs of the finalists
    /// and the baseline's come on top).
    #[serde(default = "d_runs")]
    pub runs: u32,
    /// Stop searching after this long, whatever is left of `runs`.
    #[serde(default)]
    pub seconds: Option<u64>,
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Candidates run at once; default: the machine's cores.
    #[serde(default)]
    pub parallel: Option<usize>,
    /// How many of the best on the fit part are scored on the held-back part.
    #[serde(default = "d_finalists")]
    pub finalists: usize,
}

fn d_runs() -> u32 {
    200
}
fn d_seed() -> u64 {
    1
}
fn d_finalists() -> usize {
    8
}

impl Default for Search {
    fn default() -> Self {
        Self { runs: d_runs(), seconds: None, seed: d_seed(), parallel: None, finalists: d_finalists() }
    }
}

/// A base config and the ranges of its settings to search.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    pub name: String,
    pub config: PathBuf,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub path: String,
    #[serde(default)]
    pub range: Option<[toml::Value; 2]>,
    #[serde(default)]
    pub values: Option<Vec<toml::Value>>,
}

/// What a param may take, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Float(f64, f64),
    Int(i64, i64),
    Choice(Vec<toml::Value>),
}

impl Param {
    pub fn domain(&self) -> Result<Domain, String> {
        match (&self.range, &self.values) {
            (Some([toml::Value::Integer(a), toml::Value::Integer(b)]), None) if a <= b => Ok(Domain::Int(*a, *b)),
            (Some([a, b]), None) => {
                let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
                match (num(a), num(b)) {
                    (Some(a), Some(b)) if a.is_finite() && b.is_finite() && a <= b => Ok(Domain::Float(a, b)),
                    _ => Err(format!("{}: `range` is two numbers, the smaller first", self.path)),
                }
            }
            (None, Some(v)) if !v.is_empty() => Ok(Domain::Choice(v.clone())),
            (None, Some(_)) => Err(format!("{}: `values` is empty", self.path)),
            _ => Err(format!("{}: give either `range = [low, high]` or `values = [...]`", self.path)),
        }
    }
}

impl TuneSpec {
    /// Read and check a tune file; relative paths become relative to it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = crate::config::read_text(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut spec: TuneSpec = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if spec.history.path != Path::new("-") {
            spec.history.path = base.join(&spec.history.path);
        }
        spec.baseline.config = base.join(&spec.baseline.config);
        for f in &mut spec.candidates {
            f.config = base.join(&f.config);
        }
        let problems = spec.problems();
        if problems.is_empty() { Ok(spec) } else { Err(format!("{}: {}", path.display(), problems.join("; "))) }
    }

    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let Split { fit, warmup } = self.split;
        if !(fit > 0.0 && fit < 1.0) {
            p.push(format!("split.fit: a share in (0, 1), got {fit}"));
        }
        if !(0.0..fit).contains(&warmup) {
            p.push(format!("split.warmup: a share in [0, split.fit), got {warmup}"));
        }
        if self.history.warmup.is_some() || self.environment.warmup > 0.0 {
            p.push("warmup: set it as split.warmup in a tune file".into());
        }
        if self.candidates.is_empty() {
            p.push("candidates: name at least one [[candidates]] family".into());
        }
        if self.search.runs == 0 || self.search.finalists == 0 {
            p.push("search.runs and search.finalists: at least 1".into());
        }
        for (i, f) in self.candidates.iter().enumerate() {
            if self.candidates[..i].iter().any(|g| g.name == f.name) {
                p.push(format!("candidates[{i}].name: `{}` is used twice", f.name));
            }
            for (j, param) in f.params.iter().enumerate() {
                if let Err(e) = param.domain() {
                    p.push(format!("candidates[{i}].params[{j}]: {e}"));
                }
            }
        }
        for (name, limit) in [("theta_u", self.objective.theta_u), ("unserved", self.objective.unserved), ("tau_u", self.objective.tau_u)] {
            if let Some(Limit::At(x)) = limit
                && !(x.is_finite() && x >= 0.0)
            {
                p.push(format!("objective.{name}: a number ≥ 0 or \"baseline\", got {x}"));
            }
        }
        p
    }
}
