//! Config of the `docker` provider: containers on one Docker engine.
//!
//! Kept apart from the pool config because it is long, and maps one to one
//! onto `scalewise_providers::targets::docker::DockerConfig`; the checks
//! here catch, before anything starts, what the engine would only refuse at
//! the first scale-up (a name it cannot hold, a memory limit under its
//! minimum, a healthcheck without its kind).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `provider = { kind = "docker", image = "...", ... }`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerProvider {
    /// The engine: `unix:///path/docker.sock` or `tcp://host:2375`.
    /// Default: `$DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    #[serde(default)]
    pub host: Option<String>,
    /// The image each member runs; it must be on the engine already.
    pub image: String,
    /// Program and arguments; default: the image's own.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// More labels on every member (`scalewise.pool` is always set).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `none`, `host`, or a network's name; default: the engine's.
    #[serde(default)]
    pub network: Option<String>,
    /// Memory limit of one member, MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// CPU limit of one member, in cores.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// `unless-stopped` (the engine restarts a member that exits, with
    /// back-off) or `no` (the pool replaces it).
    #[serde(default = "default_restart")]
    pub restart: String,
    /// A healthcheck instead of the image's own.
    #[serde(default)]
    pub healthcheck: Option<DockerHealthcheck>,
    /// Members are named `<name_prefix>-<slot>`; default `scalewise-<pool id>`.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Seconds between the stop signal and SIGKILL at scale-in.
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
    /// Creates and starts in flight at once.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// Seconds one engine call may take.
    #[serde(default = "default_call_timeout")]
    pub call_timeout_secs: u64,
    /// Tries per engine call (a broken connection, an engine restarting).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Seconds a launch the engine refused for good holds scale-ups.
    #[serde(default = "default_hold")]
    pub hold_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerHealthcheck {
    /// `["CMD", "prog", "arg"]` or `["CMD-SHELL", "a shell line"]`.
    pub test: Vec<String>,
    #[serde(default = "default_interval")]
    pub interval_secs: f64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default)]
    pub start_period_secs: f64,
}

fn default_restart() -> String {
    "unless-stopped".into()
}
fn default_grace() -> u64 {
    10
}
fn default_parallel() -> usize {
    8
}
fn default_call_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    4
}
fn default_hold() -> u64 {
    60
}
fn default_interval() -> f64 {
    5.0
}
fn default_retries() -> u32 {
    3
}

/// What Docker accepts as a container name.
fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The addresses of an engine the provider speaks to.
const ENGINE_SCHEMES: [&str; 3] = ["unix://", "tcp://", "http://"];
const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";

impl DockerProvider {
    /// The engine to reach: `host`, else `$DOCKER_HOST` (given here as
    /// `env`), else the default socket. One from the environment is checked
    /// as `host` is, since `config check` cannot see the host's
    /// environment; a `ssh://` one would otherwise fail only at the first
    /// call, with bollard's words.
    pub fn engine(&self, env: Option<String>) -> Result<String, String> {
        match (&self.host, env.filter(|h| !h.trim().is_empty())) {
            (Some(h), _) => Ok(h.clone()),
            (None, Some(h)) if ENGINE_SCHEMES.iter().any(|s| h.starts_with(s)) => Ok(h),
            (None, Some(h)) => Err(format!("DOCKER_HOST `{h}` must start with unix://, tcp:// or http://; set it so, or give the provider's `host`")),
            (None, None) => Ok(DEFAULT_ENGINE.into()),
        }
    }

    /// The prefix of members' names for pool `pool`.
    pub fn name_prefix(&self, pool: &str) -> String {
        self.name_prefix.clone().unwrap_or_else(|| format!("scalewise-{pool}"))
    }

    pub fn problems(&self, at: &str, pool: &str) -> Vec<String> {
        let mut p = Vec::new();
        if self.image.trim().is_empty() {
            p.push(format!("{at}.image: must name an image on the engine"));
        }
        if let Some(h) = &self.host
            && !ENGINE_SCHEMES.iter().any(|s| h.starts_with(s))
        {
            p.push(format!("{at}.host: must start with unix://, tcp:// or http://, got `{h}`"));
        }
        if self.command.first().is_some_and(|c| c.is_empty()) {
            p.push(format!("{at}.command: the program is empty"));
        }
        if let Some(k) = self.env.keys().find(|k| k.is_empty() || k.contains('=')) {
            p.push(format!("{at}.env: `{k}` is not a variable name"));
        }
        if self.labels.contains_key("scalewise.pool") {
            p.push(format!("{at}.labels: `scalewise.pool` is set by scalewise to the pool's id"));
        }
        if self.memory_mib.is_some_and(|m| m < 6) {
            p.push(format!("{at}.memory_mib: the engine's minimum is 6 MiB, got {}", self.memory_mib.unwrap_or(0)));
        }
        if self.cpus.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            p.push(format!("{at}.cpus: must be a number of cores > 0"));
        }
        if !["unless-stopped", "no"].contains(&self.restart.as_str()) {
            p.push(format!("{at}.restart: `unless-stopped` or `no`, got `{}`", self.restart));
        }
        if let Some(h) = &self.healthcheck {
            if !matches!(h.test.first().map(String::as_str), Some("CMD" | "CMD-SHELL")) || h.test.len() < 2 {
                p.push(format!("{at}.healthcheck.test: starts with \"CMD\" or \"CMD-SHELL\" and then the check, got {:?}", h.test));
            }
            if !(h.interval_secs.is_finite() && (0.001..=86_400.0).contains(&h.interval_secs)) {
                p.push(format!("{at}.healthcheck.interval_secs: between 0.001 (the engine's minimum) and 86400, got {}", h.interval_secs));
            }
            if !(h.start_period_secs.is_finite() && (0.0..=86_400.0).contains(&h.start_period_secs)) {
                p.push(format!("{at}.healthcheck.start_period_secs: between 0 and 86400, got {}", h.start_period_secs));
            }
        }
        let prefix = self.name_prefix(pool);
        if !valid_name(&prefix) {
            p.push(format!("{at}.name_prefix: `{prefix}` is not a container name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)"));
        }
        if self.grace_secs > 3600 {
            p.push(format!("{at}.grace_secs: at most 3600, got {}", self.grace_secs));
        }
        super::cloud::within(&mut p, at, "parallel", self.parallel, 1, 64);
        super::cloud::within(&mut p, at, "call_timeout_secs", self.call_timeout_secs, 1, 600);
        super::cloud::within(&mut p, at, "max_attempts", self.max_attempts, 1, 20);
        super::cloud::within(&mut p, at, "hold_secs", self.hold_secs, 0, 86_400);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_comes_from_host_then_docker_host_which_is_checked() {
        let mut d: DockerProvider = toml::from_str(r#"image = "app""#).unwrap();
        assert_eq!(d.engine(None).unwrap(), "unix:///var/run/docker.sock");
        assert_eq!(d.engine(Some(" ".into())).unwrap(), "unix:///var/run/docker.sock");
        assert_eq!(d.engine(Some("tcp://10.0.0.2:2375".into())).unwrap(), "tcp://10.0.0.2:2375");
        let e = d.engine(Some("ssh://me@box".into())).unwrap_err();
        assert!(e.contains("DOCKER_HOST `ssh://me@box` must start with unix://"), "{e}");
        d.host = Some("unix:///run/d.sock".into());
        assert_eq!(d.engine(Some("ssh://me@box".into())).unwrap(), "unix:///run/d.sock");
    }

    #[test]
    fn every_bad_field_is_named() {
        let d: DockerProvider = serde_json::from_value(serde_json::json!({
            "image": " ", "host": "ssh://box", "env": {"A=B": "x"}, "labels": {"scalewise.pool": "x"},
            "memory_mib": 2, "cpus": 0.0, "restart": "always", "healthcheck": {"test": ["curl"], "interval_secs": 0.0},
            "name_prefix": "-bad", "grace_secs": 7200, "parallel": 0, "call_timeout_secs": 0, "max_attempts": 50, "hold_secs": u64::MAX
        }))
        .unwrap();
        let got = d.problems("pools[0].provider", "web");
        for field in [".image", ".host", ".env", ".labels", ".memory_mib", ".cpus", ".restart", ".healthcheck.test", ".healthcheck.interval_secs", ".name_prefix", ".grace_secs", ".parallel", ".call_timeout_secs", ".max_attempts", ".hold_secs"] {
            assert!(got.iter().any(|p| p.starts_with(&format!("pools[0].provider{field}:"))), "{field} not named in {got:#?}");
        }
        assert_eq!(got.len(), 15, "{got:#?}");
    }

    #[test]
    fn a_plain_config_passes_and_names_members_after_the_pool() {
        let d: DockerProvider = serde_json::from_value(serde_json::json!({"image": "worker:1"})).unwrap();
        assert!(d.problems("p", "web").is_empty());
        assert_eq!(d.name_prefix("web"), "scalewise-web");
        assert_eq!((d.restart.as_str(), d.grace_secs, d.parallel), ("unless-stopped", 10, 8));
    }
}
