//! The pool part of the configuration: pools, their providers, metric
//! sources, policies and guardrails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::decide::feasibility::MetricLimit;
use crate::decide::guardrails::Guardrails;
use crate::decide::budget::BudgetPeriod;
use scalewise_sdk::InstanceKind;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The redb file; unset in a config means `.scalewise/journal.redb`.
    #[serde(default = "default_journal")]
    pub path: PathBuf,
    /// The journal file stays under this size: old decisions are dropped,
    /// every pool's newest decision, memory and states are kept.
    #[serde(default = "default_journal_max_bytes")]
    pub max_bytes: u64,
    /// Decisions older than this are dropped (default 30 days).
    #[serde(default = "default_journal_max_age")]
    pub max_age_secs: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self { path: default_journal(), max_bytes: default_journal_max_bytes(), max_age_secs: default_journal_max_age() }
    }
}

impl JournalConfig {
    pub fn retention(&self) -> crate::journal::retention::Retention {
        crate::journal::retention::Retention { max_bytes: self.max_bytes, max_age: std::time::Duration::from_secs(self.max_age_secs) }
    }
}

fn default_journal_max_bytes() -> u64 {
    crate::journal::retention::Retention::default().max_bytes
}

fn default_journal_max_age() -> u64 {
    crate::journal::retention::Retention::default().max_age.as_secs()
}

fn default_journal() -> PathBuf {
    ".scalewise/journal.redb".into()
}

/// A named metric source other than the built-in `host`, `pool` and `push`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    Prometheus {
        url: String,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        /// `Authorization: Bearer …`, given here or read from a file.
        #[serde(default)]
        bearer_token: Option<String>,
        #[serde(default)]
        bearer_token_file: Option<PathBuf>,
        #[serde(default)]
        basic_auth: Option<BasicAuth>,
        /// Sent with every query (e.g. a tenant's `X-Scope-OrgID`).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// A CA certificate (PEM) to trust for https, besides the built-in roots.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// The largest answer read, in bytes; a longer one is an error
        /// that names this field.
        #[serde(default = "default_max_answer_bytes")]
        max_answer_bytes: usize,
    },
    Replay {
        path: PathBuf,
        /// How long each row of the trace lasts when replayed.
        #[serde(default = "default_step_ms")]
        step_ms: u64,
    },
    /// NVIDIA GPUs through NVML (needs the driver; without one the
    /// source reports itself unavailable and the host keeps running).
    Nvml {},
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn default_timeout_ms() -> u64 {
    2000
}
fn default_max_answer_bytes() -> usize {
    scalewise_providers::sources::prometheus::DEFAULT_MAX_ANSWER_BYTES
}
fn default_step_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderConfig {
    Local {
        /// Program and arguments of each worker.
        command: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Pidfiles and status files; default `.scalewise/run/<pool id>`.
        #[serde(default)]
        run_dir: Option<PathBuf>,
        #[serde(default = "default_grace")]
        grace_secs: u64,
        #[serde(default = "default_ready")]
        ready_after_ms: u64,
        #[serde(default)]
        keep_on_exit: bool,
        /// Memory one worker needs, in MiB; measured from the running
        /// workers when unset. Limits scale-ups to what free memory holds.
        #[serde(default)]
        member_memory_mib: Option<u64>,
        /// Memory kept free for everything else on the machine, in MiB.
        #[serde(default = "default_reserve")]
        reserve_memory_mib: u64,
        /// Cores one worker needs; scale-ups are limited to idle cores
        /// when set.
        #[serde(default)]
        member_cpus: Option<f64>,
    },
    /// The simulator's fleet: only `scalewise simulate` runs it (which runs
    /// any pool on its simulated fleet; this kind lets a policy-set config
    /// say so, and choose a spot share).
    Simulated {
        /// The share of launches that are spot instances, in [0, 1].
        #[serde(default)]
        spot_share: f64,
    },
    /// EC2 instances tagged with the pool's id.
    #[serde(rename = "aws-ec2")]
    AwsEc2(super::cloud::Ec2Provider),
    /// A Kubernetes workload's scale subresource.
    Kubernetes(super::cloud::KubernetesProvider),
    /// Containers on a Docker engine, labelled with the pool's id.
    Docker(super::docker::DockerProvider),
    /// An Azure virtual machine scale set.
    #[serde(rename = "azure-vmss")]
    AzureVmss(super::azure::AzureVmssProvider),
    /// A Compute Engine managed instance group.
    Gce(super::gce::GceProvider),
}

fn default_grace() -> u64 {
    10
}
fn default_ready() -> u64 {
    500
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// The series name strategies see.
    pub name: String,
    /// `host`, `pool`, `push`, or the name of a `[sources.*]` entry.
    pub source: String,
    /// The source's query; default: the metric's name.
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default = "default_window")]
    pub window_secs: u64,
    #[serde(default = "default_step")]
    pub step_secs: u64,
}

fn default_window() -> u64 {
    60
}
fn default_step() -> u64 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyRef {
    pub policy: String,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    /// The instance kind the pool runs, from the catalog.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub catalog: Vec<InstanceKind>,
    /// Money the pool may spend per budget period.
    #[serde(default)]
    pub budget: Option<f64>,
    /// `"month"`: the budget runs by calendar month in UTC, as cloud bills
    /// do. Leave it out for a rolling period of `budget_period_hours`.
    #[serde(default)]
    pub budget_period: Option<String>,
    /// The length of a rolling budget period (default 720 hours).
    #[serde(default)]
    pub budget_period_hours: Option<f64>,
    /// Percentages of the budget at which an alert fires, once per period.
    #[serde(default = "default_alerts")]
    pub budget_alerts: Vec<f64>,
}

impl CostConfig {
    pub fn period(&self) -> BudgetPeriod {
        match self.budget_period.as_deref() {
            Some("month") => BudgetPeriod::Month,
            _ => BudgetPeriod::Hours(self.budget_period_hours.unwrap_or(720.0)),
        }
    }
}

fn default_alerts() -> Vec<f64> {
    vec![50.0, 80.0, 100.0]
}

fn default_reserve() -> u64 {
    512
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub id: String,
    /// The preset this pool was expanded from, if any (see `presets`).
    #[serde(default)]
    pub preset: Option<String>,
    pub min: u32,
    pub max: u32,
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Decide and record, never act.
    #[serde(default)]
    pub dry_run: bool,
    /// Changes of more than this many members wait for an operator.
    #[serde(default)]
    pub approval_above: Option<u32>,
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl_secs: u64,
    pub provider: ProviderConfig,
    #[serde(default)]
    pub metrics: Vec<MetricConfig>,
    pub strategies: Vec<StrategyRef>,
    /// Required when there is more than one strategy.
    #[serde(default)]
    pub consensus: Option<String>,
    #[serde(default)]
    pub cost_rules: Vec<String>,
    #[serde(default)]
    pub cost: CostConfig,
    #[serde(default)]
    pub guardrails: Guardrails,
    /// Limits on a scale-up read from metrics of free resource (free GPU
    /// memory, ...): see `decide::feasibility`.
    #[serde(default)]
    pub limits: Vec<MetricLimit>,
    /// This pool's settings for its policies, laid over the global
    /// `[policies.settings.*]`.
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
    /// Policy name → the id of the instance loaded with this pool's
    /// settings; filled in by `Config::parse`.
    #[serde(skip)]
    pub instances: BTreeMap<String, String>,
    /// A candidate set evaluated beside the serving one on every tick, in
    /// shadow: recorded, compared, never acted on, until promoted.
    #[serde(default)]
    pub candidate: Option<CandidateConfig>,
    /// A language model asked about the pool's decisions: a voter, a
    /// reviewer of large changes, or both (see `config::advisor`).
    #[serde(default)]
    pub advisor: Option<super::advisor::AdvisorConfig>,
}

impl PoolConfig {
    /// Every policy the pool names: its strategies, consensus and cost
    /// rules, then its candidate's.
    pub fn policy_names(&self) -> impl Iterator<Item = &String> {
        let candidate = self.candidate.iter().flat_map(|c| c.strategies.iter().map(|s| &s.policy).chain(&c.consensus).chain(&c.cost_rules));
        self.strategies.iter().map(|s| &s.policy).chain(&self.consensus).chain(&self.cost_rules).chain(candidate)
    }
}

/// A pool's candidate set: its own strategies, consensus and cost rules
/// (the pool's bounds, guardrails and metrics are shared).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateConfig {
    pub strategies: Vec<StrategyRef>,
    #[serde(default)]
    pub consensus: Option<String>,
    #[serde(default)]
    pub cost_rules: Vec<String>,
}

fn default_interval() -> u64 {
    1000
}
fn default_approval_ttl() -> u64 {
    300
}

/// Every problem of the pools part, each with its field path.
pub fn check(pools: &[PoolConfig], sources: &BTreeMap<String, SourceConfig>, problems: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    for (name, s) in sources {
        let at = format!("sources.{name}");
        if ["host", "pool", "push"].contains(&name.as_str()) {
            problems.push(format!("{at}: `{name}` is a built-in source; pick another name"));
        }
        match s {
            SourceConfig::Prometheus { url, timeout_ms, bearer_token, bearer_token_file, basic_auth, max_answer_bytes, .. } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    problems.push(format!("{at}.url: must start with http:// or https://, got `{url}`"));
                }
                if bearer_token.is_some() && bearer_token_file.is_some() {
                    problems.push(format!("{at}: give bearer_token or bearer_token_file, not both"));
                }
                if (bearer_token.is_some() || bearer_token_file.is_some()) && basic_auth.is_some() {
                    problems.push(format!("{at}: give a bearer token or basic_auth, not both"));
                }
                if let Some(b) = basic_auth
                    && b.password.is_some() == b.password_file.is_some()
                {
                    problems.push(format!("{at}.basic_auth: give exactly one of password and password_file"));
                }
                if *timeout_ms == 0 {
                    problems.push(format!("{at}.timeout_ms: must be at least 1"));
                }
                if *max_answer_bytes < 1024 {
                    problems.push(format!("{at}.max_answer_bytes: {max_answer_bytes} cannot hold an answer; give at least 1024"));
                }
            }
            SourceConfig::Replay { step_ms, .. } => {
                if *step_ms == 0 {
                    problems.push(format!("{at}.step_ms: must be at least 1"));
                }
            }
            SourceConfig::Nvml {} => {}
        }
    }
    for (i, p) in pools.iter().enumerate() {
        let at = format!("pools[{i}]");
        if p.id.is_empty() || !p.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problems.push(format!("{at}.id: use letters, digits, `-` and `_`, got `{}`", p.id));
        }
        if !seen.insert(p.id.clone()) {
            problems.push(format!("{at}.id: `{}` is used by another pool", p.id));
        }
        if p.min > p.max {
            problems.push(format!("{at}.min: {} is above max {}", p.min, p.max));
        }
        if !(100..=3_600_000).contains(&p.interval_ms) {
            problems.push(format!("{at}.interval_ms: must be between 100 and 3600000, got {}", p.interval_ms));
        }
        if p.strategies.is_empty() {
            problems.push(format!("{at}.strategies: a pool needs at least one strategy"));
        }
        if let Some(c) = &p.candidate {
            if c.strategies.is_empty() {
                problems.push(format!("{at}.candidate.strategies: a candidate needs at least one strategy"));
            }
            if c.strategies.len() > 1 && c.consensus.is_none() {
                problems.push(format!("{at}.candidate.consensus: {} strategies need a consensus policy to combine them", c.strategies.len()));
            }
        }
        if p.strategies.len() > 1 && p.consensus.is_none() {
            problems.push(format!("{at}.consensus: {} strategies need a consensus policy to combine them", p.strategies.len()));
        }
        for (j, s) in p.strategies.iter().enumerate() {
            if !(s.weight.is_finite() && s.weight >= 0.0) {
                problems.push(format!("{at}.strategies[{j}].weight: must be a number ≥ 0, got {}", s.weight));
            }
        }
        match &p.provider {
            ProviderConfig::Local { command, grace_secs, member_memory_mib, member_cpus, .. } => {
                if command.is_empty() || command[0].is_empty() {
                    problems.push(format!("{at}.provider.command: must name a program"));
                }
                if *member_memory_mib == Some(0) {
                    problems.push(format!("{at}.provider.member_memory_mib: must be at least 1 (leave it out to measure the workers)"));
                }
                if member_cpus.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                    problems.push(format!("{at}.provider.member_cpus: must be a number of cores > 0"));
                }
                if *grace_secs > 3600 {
                    problems.push(format!("{at}.provider.grace_secs: at most 3600, got {grace_secs}"));
                }
            }
            ProviderConfig::Simulated { spot_share } => {
                if !(0.0..=1.0).contains(spot_share) {
                    problems.push(format!("{at}.provider.spot_share: must be in [0, 1], got {spot_share}"));
                }
            }
            ProviderConfig::AwsEc2(ec2) => problems.extend(ec2.problems(&format!("{at}.provider"))),
            ProviderConfig::Kubernetes(k) => problems.extend(k.problems(&format!("{at}.provider"))),
            ProviderConfig::Docker(d) => problems.extend(d.problems(&format!("{at}.provider"), &p.id)),
            ProviderConfig::AzureVmss(a) => problems.extend(a.problems(&format!("{at}.provider"))),
            ProviderConfig::Gce(g) => problems.extend(g.problems(&format!("{at}.provider"))),
        }
        for (j, m) in p.metrics.iter().enumerate() {
            let mat = format!("{at}.metrics[{j}]");
            if !["host", "pool", "push"].contains(&m.source.as_str()) && !sources.contains_key(&m.source) {
                problems.push(format!("{mat}.source: no source `{}`; use host, pool, push, or define [sources.{}]", m.source, m.source));
            }
            if m.window_secs == 0 || m.step_secs == 0 {
                problems.push(format!("{mat}: window_secs and step_secs must be at least 1"));
            }
        }
        let g = &p.guardrails;
        if !(0.0..1.0).contains(&g.tolerance) {
            problems.push(format!("{at}.guardrails.tolerance: must be in [0, 1), got {}", g.tolerance));
        }
        if g.manual_hold_secs > crate::decide::guardrails::MAX_HOLD_SECS {
            problems.push(format!("{at}.guardrails.manual_hold_secs: must be at most {} (7 days), got {}", crate::decide::guardrails::MAX_HOLD_SECS, g.manual_hold_secs));
        }
        for (name, limits) in [("scale_up_limits", &g.scale_up_limits), ("scale_down_limits", &g.scale_down_limits)] {
            for (j, l) in limits.iter().enumerate() {
                if !(l.value.is_finite() && l.value > 0.0) || l.period_secs == 0 {
                    problems.push(format!("{at}.guardrails.{name}[{j}]: value and period_secs must be positive"));
                }
            }
        }
        if let Some(k) = &p.cost.kind
            && !p.cost.catalog.iter().any(|c| &c.name == k) {
                problems.push(format!("{at}.cost.kind: `{k}` is not in the pool's catalog"));
            }
        if let Some(b) = p.cost.budget
            && !(b.is_finite() && b >= 0.0) {
                problems.push(format!("{at}.cost.budget: must be a number ≥ 0"));
            }
        match (p.cost.budget_period.as_deref(), p.cost.budget_period_hours) {
            (Some("month") | None, None) => {}
            (Some("month"), Some(_)) => problems.push(format!("{at}.cost.budget_period_hours: a monthly budget has no length in hours; drop one of the two")),
            (Some(other), _) => problems.push(format!("{at}.cost.budget_period: `{other}` is not a period; use \"month\", or budget_period_hours for a rolling one")),
            (None, Some(h)) if !(h.is_finite() && h > 0.0) => problems.push(format!("{at}.cost.budget_period_hours: must be a number of hours > 0, got {h}")),
            (None, Some(_)) => {}
        }
        if p.cost.budget_alerts.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
            problems.push(format!("{at}.cost.budget_alerts: each alert is a percentage of the budget > 0"));
        }
        if let Some(a) = &p.advisor {
            let names: Vec<&str> = p.strategies.iter().map(|s| s.policy.as_str()).collect();
            problems.extend(a.problems(&format!("{at}.advisor"), p.consensus.is_some(), &names));
        }
        for (j, l) in p.limits.iter().enumerate() {
            let lat = format!("{at}.limits[{j}]");
            if !(l.per_member.is_finite() && l.per_member > 0.0) {
                problems.push(format!("{lat}.per_member: must be a number > 0, got {}", l.per_member));
            }
            if !(l.reserve.is_finite() && l.reserve >= 0.0) {
                problems.push(format!("{lat}.reserve: must be a number ≥ 0, got {}", l.reserve));
            }
            if !p.metrics.iter().any(|m| m.name == l.metric) {
                problems.push(format!("{lat}.metric: the pool collects no metric `{}`; add it to the pool's metrics", l.metric));
            }
        }
    }
}

#[cfg(test)]
mod tests;
