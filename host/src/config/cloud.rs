//! Config of the providers that drive infrastructure outside this machine
//! (`aws-ec2`, `kubernetes`) and of leader election between host replicas.
//!
//! Kept apart from the pool config because these sections are longer, and
//! each maps one to one onto its adapter's own config in
//! `scalewise-providers`; the checks here only catch what the adapter
//! could not report as clearly.

use serde::Deserialize;

/// `{at}.{field}: between {lo} and {hi}, got {value}` when `value` is
/// outside `lo..=hi`: the range check every outside provider's limits share.
pub(crate) fn within<T: PartialOrd + std::fmt::Display>(problems: &mut Vec<String>, at: &str, field: &str, value: T, lo: T, hi: T) {
    if !(lo <= value && value <= hi) {
        problems.push(format!("{at}.{field}: between {lo} and {hi}, got {value}"));
    }
}

/// `provider = { kind = "aws-ec2", ... }`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Provider {
    /// Default: the standard AWS chain (AWS_REGION, the profile, IMDS).
    #[serde(default)]
    pub region: Option<String>,
    /// An EC2-compatible endpoint instead of AWS's own.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub launch_template_id: Option<String>,
    #[serde(default)]
    pub launch_template_name: Option<String>,
    #[serde(default)]
    pub launch_template_version: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
    /// Used when the cost rules name no instance kind.
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    /// Tries per API call (throttling, 5xx, lost connections).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// How long a quota error holds the pool at its size.
    #[serde(default = "default_cooldown")]
    pub quota_cooldown_secs: u64,
    /// Instances per DescribeInstances page.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
}

fn default_page_size() -> i32 {
    100
}

/// Defaults every cloud provider shares: tries per call, how long a
/// quota refusal holds scale-ups, and seconds per request.
pub(super) fn default_attempts() -> u32 {
    6
}
pub(super) fn default_cooldown() -> u64 {
    300
}
pub(super) fn default_request_timeout() -> u64 {
    30
}

impl Ec2Provider {
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        let template = self.launch_template_id.is_some() || self.launch_template_name.is_some();
        if !template && self.image_id.is_none() {
            p.push(format!("{at}: give a launch template (launch_template_id or launch_template_name) or an image_id"));
        }
        if !template && self.instance_type.is_none() {
            p.push(format!("{at}.instance_type: needed without a launch template (cost rules may still choose another kind)"));
        }
        if !(1..=20).contains(&self.max_attempts) {
            p.push(format!("{at}.max_attempts: must be between 1 and 20, got {}", self.max_attempts));
        }
        within(&mut p, at, "quota_cooldown_secs", self.quota_cooldown_secs, 0, 86_400);
        if !(5..=1000).contains(&self.page_size) {
            p.push(format!("{at}.page_size: EC2 pages hold 5 to 1000 instances, got {}", self.page_size));
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            p.push(format!("{at}.endpoint_url: must start with http:// or https://, got `{url}`"));
        }
        p
    }
}

/// `provider = { kind = "kubernetes", ... }`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesProvider {
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// `Deployment`, `StatefulSet`, or a custom kind with a scale subresource.
    #[serde(default = "default_workload_kind")]
    pub workload: String,
    /// The resource's plural, if not the lower-cased kind plus `s`.
    #[serde(default)]
    pub plural: Option<String>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub name: String,
    /// The API server's URL; default: in-cluster, then KUBECONFIG.
    #[serde(default)]
    pub cluster_url: Option<String>,
}

fn default_api_version() -> String {
    "apps/v1".into()
}
fn default_workload_kind() -> String {
    "Deployment".into()
}
fn default_namespace() -> String {
    "default".into()
}

impl KubernetesProvider {
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        if self.name.is_empty() {
            p.push(format!("{at}.name: the workload's name is empty"));
        }
        if self.api_version.is_empty() || self.api_version.matches('/').count() > 1 {
            p.push(format!("{at}.api_version: must be `version` or `group/version`, got `{}`", self.api_version));
        }
        p
    }
}

/// `[leader_election]`: several replicas, one acting.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default = "default_lease")]
    pub lease_name: String,
    /// This replica's identity; default: $POD_NAME, else $HOSTNAME.
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default = "default_duration")]
    pub lease_duration_secs: f64,
    #[serde(default = "default_deadline")]
    pub renew_deadline_secs: f64,
    #[serde(default = "default_retry")]
    pub retry_period_secs: f64,
    #[serde(default)]
    pub cluster_url: Option<String>,
}

fn default_lease() -> String {
    "scalewise".into()
}
fn default_duration() -> f64 {
    15.0
}
fn default_deadline() -> f64 {
    10.0
}
fn default_retry() -> f64 {
    2.0
}

impl LeaderElectionConfig {
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("scalewise-{}", std::process::id()))
    }

    pub fn problems(&self) -> Vec<String> {
        let (d, r, t) = (self.lease_duration_secs, self.renew_deadline_secs, self.retry_period_secs);
        let mut p = Vec::new();
        if !(d.is_finite() && d >= 1.0 && d.fract() == 0.0) {
            p.push(format!("leader_election.lease_duration_secs: must be a whole number of seconds ≥ 1 (the Lease stores seconds), got {d}"));
        }
        if !(r.is_finite() && r > 0.0 && r < d) {
            p.push(format!("leader_election.renew_deadline_secs: must be > 0 and below lease_duration_secs ({d}), got {r}"));
        }
        if !(t.is_finite() && t > 0.0 && t <= d - r) {
            // A follower may count the lease from its previous look, up to
            // one retry period early; the leader must have stopped by then.
            p.push(format!(
                "leader_election.retry_period_secs: must be > 0 and at most lease_duration_secs - renew_deadline_secs ({}), got {t}",
                d - r
            ));
        }
        p
    }
}

/// What this binary cannot serve, because it was built without the cargo
/// feature of a provider the config names: one line per field, saying
/// which feature to build with. `serve` refuses such a config and
/// `config check` reports it, so a demo-sized build meets a cloud config
/// with a clear message rather than a missing provider at the first tick.
pub fn unbuilt(config: &super::Config) -> Vec<String> {
    let mut problems = Vec::new();
    let missing = |feature: &str| format!("this scalewise was built without the `{feature}` feature; build it with `cargo build --release -p scalewise --features {feature}` (or `--features cloud`)");
    for (i, p) in config.pools.iter().enumerate() {
        match &p.provider {
            super::ProviderConfig::AwsEc2(_) if !cfg!(feature = "aws") => problems.push(format!("pools[{i}].provider: kind `aws-ec2`: {}", missing("aws"))),
            super::ProviderConfig::Kubernetes(_) if !cfg!(feature = "kubernetes") => problems.push(format!("pools[{i}].provider: kind `kubernetes`: {}", missing("kubernetes"))),
            super::ProviderConfig::Docker(_) if !cfg!(feature = "docker") => problems.push(format!("pools[{i}].provider: kind `docker`: {}", missing("docker"))),
            super::ProviderConfig::AzureVmss(_) if !cfg!(feature = "azure") => problems.push(format!("pools[{i}].provider: kind `azure-vmss`: {}", missing("azure"))),
            super::ProviderConfig::Gce(_) if !cfg!(feature = "gce") => problems.push(format!("pools[{i}].provider: kind `gce`: {}", missing("gce"))),
            _ => {}
        }
    }
    if config.leader_election.is_some() && !cfg!(feature = "kubernetes") {
        problems.push(format!("leader_election: elects on a Kubernetes Lease: {}", missing("kubernetes")));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_this_binary_was_built_without_is_named_with_its_feature() {
        let config = super::super::Config::parse(
            r#"
[leader_election]
identity = "a"
[[pools]]
id = "web"
min = 0
max = 2
strategies = [{ policy = "queue-depth" }]
provider = { kind = "kubernetes", name = "web" }
[[pools]]
id = "fleet"
min = 0
max = 2
strategies = [{ policy = "queue-depth" }]
provider = { kind = "aws-ec2", region = "eu-west-1", image_id = "ami-1", instance_type = "m7i.large" }
"#,
        )
        .unwrap();
        let problems = unbuilt(&config);
        let has = |s: &str| problems.iter().any(|p| p.contains(s));
        assert_eq!(has("pools[0].provider: kind `kubernetes`: this scalewise was built without the `kubernetes` feature"), !cfg!(feature = "kubernetes"), "{problems:?}");
        assert_eq!(has("leader_election: elects on a Kubernetes Lease"), !cfg!(feature = "kubernetes"), "{problems:?}");
        assert_eq!(has("pools[1].provider: kind `aws-ec2`: this scalewise was built without the `aws` feature; build it with `cargo build --release -p scalewise --features aws`"), !cfg!(feature = "aws"), "{problems:?}");
        assert_eq!(problems.len(), [!cfg!(feature = "kubernetes"), !cfg!(feature = "kubernetes"), !cfg!(feature = "aws")].iter().filter(|b| **b).count());
    }
}
