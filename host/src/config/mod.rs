//! The host's configuration: one TOML file.
//!
//! Every field has a default, so an empty file is a working configuration.
//! Unknown fields are errors (a typo must not silently do nothing), and
//! relative paths are relative to the file, so a config means the same thing
//! wherever the host is started from.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::{InstanceMode, PolicyLimits, SandboxOptions};

pub mod advisor;
pub mod azure;
pub mod check;
pub mod cloud;
pub mod docker;
pub mod gce;
pub mod pools;
pub mod presets;
pub use pools::{JournalConfig, MetricConfig, PoolConfig, ProviderConfig, SourceConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub policies: PoliciesConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    /// Named metric sources (Prometheus servers, replayed traces).
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// Several replicas of the host, one acting (on a Kubernetes Lease).
    #[serde(default)]
    pub leader_election: Option<cloud::LeaderElectionConfig>,
    /// The built-in demo's load generator, if wanted.
    #[serde(default)]
    pub demo: Option<crate::demo::DemoConfig>,
    /// The config's own presets, beside the built-in ones (see [`presets`]);
    /// already expanded into the pools that use them.
    #[serde(default)]
    pub presets: BTreeMap<String, toml::Value>,
    /// Policies loaded under another id with their own settings: a pool's
    /// `settings` (its own, or its preset's) make one, keyed by that id.
    #[serde(skip)]
    pub instances: BTreeMap<String, Instance>,
    /// Where local pools' run directories go unless a pool names its own
    /// (`.scalewise/run` beside the config file); none for a config that
    /// was not read from a file.
    #[serde(skip)]
    pub run_root: Option<PathBuf>,
}

/// A policy file loaded a second time, under its own id and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The policy (file name without extension) it is an instance of.
    pub base: String,
    /// Its settings as the JSON text it receives: the global
    /// `[policies.settings.<base>]` with the pool's or preset's laid over.
    pub settings: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the HTTP API listens; loopback by default.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Bearer token required by mutating API calls. Unset: they are refused.
    #[serde(default)]
    pub token: Option<String>,
    /// Let `POST /policies/ID/evaluate` run without the token. It changes
    /// nothing (it is counted in no live counter), but it costs CPU.
    #[serde(default)]
    pub evaluate_without_token: bool,
    /// How many `POST /policies/ID/evaluate` calls run at once; more are
    /// answered 429, so that trying policies out cannot delay pool ticks.
    #[serde(default = "default_evaluate_concurrency")]
    pub evaluate_concurrency: usize,
    /// The largest request body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            token: None,
            evaluate_without_token: false,
            evaluate_concurrency: default_evaluate_concurrency(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

fn default_evaluate_concurrency() -> usize {
    1
}

fn default_max_body_bytes() -> usize {
    2 << 20
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InstanceModeConfig {
    /// Fresh for a policy whose fresh instance is cheap (a Rust component),
    /// warm for one whose is not (Python, JavaScript): measured at load.
    #[default]
    Auto,
    Fresh,
    Warm,
}

impl InstanceModeConfig {
    fn mode(self, warm_max_calls: u64) -> InstanceMode {
        match self {
            InstanceModeConfig::Auto => InstanceMode::Auto { max_calls: warm_max_calls },
            InstanceModeConfig::Fresh => InstanceMode::Fresh,
            InstanceModeConfig::Warm => InstanceMode::Warm { max_calls: warm_max_calls },
        }
    }
}

/// One policy's own limits, over `[policies]`'s (`[policies.limits.ID]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyLimitsConfig {
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    #[serde(default)]
    pub instance_mode: Option<InstanceModeConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// The watched directory of `.wasm` components and `.rhai` scripts.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// Precompiled artifacts; unset disables the cache.
    #[serde(default = "default_cache")]
    pub cache_dir: Option<PathBuf>,
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    #[serde(default)]
    pub instance_mode: InstanceModeConfig,
    /// Warm instances are retired after this many calls.
    #[serde(default = "default_warm_calls")]
    pub warm_max_calls: u64,
    /// The largest policy file read, in bytes; larger ones are refused
    /// before a byte is read.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// A changed file is loaded once its size and modification time have
    /// been the same for this long, so a file being copied in is not
    /// loaded half-written.
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    /// Where version numbers are kept, so the same build keeps its number
    /// across restarts.
    #[serde(default = "default_versions_file")]
    pub versions_file: PathBuf,
    /// Settings per policy id (the file name without its extension).
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
    /// A deadline or an instance mode for one policy id, over the defaults
    /// above (a Python policy that needs 50 ms, say).
    #[serde(default)]
    pub limits: BTreeMap<String, PolicyLimitsConfig>,
    /// Policies from an OCI registry or an HTTPS URL, by the id pools name
    /// them by (see [`crate::policy::remote`]).
    #[serde(default)]
    pub remote: BTreeMap<String, RemotePolicy>,
    /// minisign public keys (the base64 line of a `.pub` file). When any is
    /// set, every remote policy must be signed by one of them.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Where fetched remote policies are kept, checked, by digest.
    #[serde(default = "default_remote_dir")]
    pub remote_dir: PathBuf,
    /// The largest remote policy fetched, in bytes.
    #[serde(default = "default_max_file_bytes")]
    pub remote_max_bytes: u64,
    /// Each request to a registry or URL must answer within this.
    #[serde(default = "default_remote_timeout_ms")]
    pub remote_timeout_ms: u64,
    /// How to log in to registries that are not public, by `host[:port]`.
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryLogin>,
}

/// Credentials for one registry, from files (never in the config's text).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryLogin {
    /// With `password_file`: basic authentication.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A bearer token instead of a username and password.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// A policy from outside the directory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemotePolicy {
    /// `oci://host/repo:tag@sha256:…`, or an `https://…/NAME.wasm` (or `.rhai`) URL.
    pub source: String,
    /// For a URL: the sha256 of the file it serves.
    #[serde(default)]
    pub sha256: Option<String>,
    /// For an OCI reference without a digest: follow its tag (the digest it
    /// resolves to is reported on each load). Off: a digest is required.
    #[serde(default)]
    pub follow_tag: bool,
}

impl Default for PoliciesConfig {
    fn default() -> Self {
        Self {
            dir: default_dir(),
            cache_dir: default_cache(),
            deadline_ms: default_deadline(),
            memory_mib: default_memory(),
            instance_mode: InstanceModeConfig::Auto,
            warm_max_calls: default_warm_calls(),
            max_file_bytes: default_max_file_bytes(),
            settle_ms: default_settle_ms(),
            versions_file: default_versions_file(),
            settings: BTreeMap::new(),
            limits: BTreeMap::new(),
            remote: BTreeMap::new(),
            trusted_keys: Vec::new(),
            remote_dir: default_remote_dir(),
            remote_max_bytes: default_max_file_bytes(),
            remote_timeout_ms: default_remote_timeout_ms(),
            registries: BTreeMap::new(),
        }
    }
}

fn default_dir() -> PathBuf {
    "policies.d".into()
}
fn default_cache() -> Option<PathBuf> {
    Some(".scalewise/cache".into())
}
fn default_deadline() -> u64 {
    10
}
fn default_memory() -> u64 {
    64
}
fn default_warm_calls() -> u64 {
    10_000
}
fn default_max_file_bytes() -> u64 {
    crate::policy::file::DEFAULT_MAX_BYTES
}
fn default_settle_ms() -> u64 {
    crate::policy::file::DEFAULT_SETTLE.as_millis() as u64
}
fn default_remote_dir() -> PathBuf {
    ".scalewise/remote".into()
}
fn default_remote_timeout_ms() -> u64 {
    10_000
}
fn default_versions_file() -> PathBuf {
    ".scalewise/policy-versions.json".into()
}

/// A typing error as `path: message (line N)`; the line only where the
/// error has a span in `text`.
/// The largest config file read: a config is text a person writes.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// A config file's text, read with a bound: a config path that names a
/// device or a huge file is refused, not read without end.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use scalewise_providers::file::{FileError, read_text};
    read_text(path, MAX_FILE_BYTES).map_err(|e| match e {
        FileError::Io(e) => e,
        FileError::TooLarge { .. } => std::io::Error::other(format!("{e}; a config is text a person writes")),
        e => std::io::Error::other(e),
    })
}

fn type_error(e: serde_path_to_error::Error<toml::de::Error>, text: &str) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.span() {
        Some(s) => format!("{path}: {} (line {})", inner.message(), text[..s.start.min(text.len())].lines().count().max(1)),
        None => format!("{path}: {}", inner.message()),
    }
}

impl Config {
    /// Read, parse and check a config file; relative paths become relative to it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_text(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse_at(&text, path).map_err(|message| ConfigError::Invalid { path: path.display().to_string(), message })
    }

    /// Parse and check the text of the config file at `path`; relative
    /// paths become relative to it.
    pub fn parse_at(text: &str, path: &Path) -> Result<Config, String> {
        let mut config = Self::parse(text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.policies.dir = base.join(&config.policies.dir);
        config.policies.cache_dir = config.policies.cache_dir.map(|c| base.join(c));
        config.policies.versions_file = base.join(&config.policies.versions_file);
        config.policies.remote_dir = base.join(&config.policies.remote_dir);
        for login in config.policies.registries.values_mut() {
            for file in [&mut login.password_file, &mut login.token_file].into_iter().flatten() {
                *file = base.join(&*file);
            }
        }
        config.journal.path = base.join(&config.journal.path);
        for s in config.sources.values_mut() {
            match s {
                SourceConfig::Replay { path, .. } => *path = base.join(&*path),
                SourceConfig::Prometheus { bearer_token_file, basic_auth, ca_file, .. } => {
                    for file in [bearer_token_file, ca_file].into_iter().flatten() {
                        *file = base.join(&*file);
                    }
                    if let Some(file) = basic_auth.as_mut().and_then(|b| b.password_file.as_mut()) {
                        *file = base.join(&*file);
                    }
                }
                SourceConfig::Nvml {} => {}
            }
        }
        for p in &mut config.pools {
            if let Some(a) = &mut p.advisor {
                for file in [&mut a.api_key_file, &mut a.ca_file, &mut a.system_prompt_file, &mut a.prompt_file].into_iter().flatten() {
                    *file = base.join(&*file);
                }
            }
            if let ProviderConfig::Local { run_dir, .. } = &mut p.provider {
                *run_dir = Some(base.join(run_dir.clone().unwrap_or_else(|| PathBuf::from(".scalewise/run").join(&p.id))));
            }
        }
        config.run_root = Some(base.join(".scalewise/run"));
        Ok(config)
    }

    /// Parse and check TOML text. The error lists every problem found, one
    /// per line, each starting with its field path.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut problems = Vec::new();
        let catalog = presets::catalog(doc.get("presets"), &mut problems);
        let uses_presets = doc.get("pools").and_then(toml::Value::as_array).is_some_and(|ps| ps.iter().any(|p| p.get("preset").is_some()));
        let mut config: Config = if uses_presets {
            // Expanded pools are typed from the merged document, which has
            // no line numbers; errors keep their field paths.
            presets::expand(&mut doc, &catalog, &mut problems);
            if !problems.is_empty() {
                return Err(problems.join("\n"));
            }
            serde_path_to_error::deserialize(toml::Value::Table(doc)).map_err(|e| type_error(e, text))?
        } else {
            let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
            serde_path_to_error::deserialize(de).map_err(|e| type_error(e, text))?
        };
        config.derive_instances(&catalog, &mut problems);
        problems.extend(config.problems());
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(config)
    }

    /// Give every pool-level `settings.<policy>` its policy instance: the
    /// global settings with the pool's laid over, loaded under
    /// `<policy>@preset.<name>` when they are exactly its preset's (so every
    /// pool on that preset shares one) and `<policy>@<pool id>` otherwise.
    fn derive_instances(&mut self, catalog: &BTreeMap<String, toml::Table>, problems: &mut Vec<String>) {
        for (i, pool) in self.pools.iter_mut().enumerate() {
            let used: Vec<String> = pool.policy_names().cloned().collect();
            for (name, value) in &pool.settings {
                let at = format!("pools[{i}].settings.{name}");
                if !used.contains(name) {
                    problems.push(format!("{at}: the pool uses no policy `{name}`; settings are for its strategies, consensus and cost rules"));
                    continue;
                }
                let Some(table) = value.as_table() else {
                    problems.push(format!("{at}: must be a table of settings, got {}", value.type_str()));
                    continue;
                };
                let mut merged = self.policies.settings.get(name).and_then(toml::Value::as_table).cloned().unwrap_or_default();
                presets::merge(&mut merged, table);
                let preset = pool.preset.as_ref().filter(|p| {
                    catalog.get(*p).and_then(|f| f.get("settings")).and_then(|s| s.get(name)) == Some(value)
                });
                let id = match preset {
                    Some(p) => format!("{name}@preset.{p}"),
                    None => format!("{name}@{}", pool.id),
                };
                let settings = serde_json::to_string(&merged).expect("TOML values are valid JSON");
                self.instances.insert(id.clone(), Instance { base: name.clone(), settings });
                pool.instances.insert(name.clone(), id);
            }
        }
    }

    /// Everything wrong with a parsed config, each with its field path.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let p = &self.policies;
        if !(1..=60_000).contains(&p.deadline_ms) {
            problems.push(format!("policies.deadline_ms: must be between 1 and 60000, got {}", p.deadline_ms));
        }
        for (id, l) in &p.limits {
            if let Some(d) = l.deadline_ms.filter(|d| !(1..=60_000).contains(d)) {
                problems.push(format!("policies.limits.{id}.deadline_ms: must be between 1 and 60000, got {d}"));
            }
        }
        if !(1..=4096).contains(&p.memory_mib) {
            problems.push(format!("policies.memory_mib: must be between 1 and 4096, got {}", p.memory_mib));
        }
        if !(1..=64).contains(&self.server.evaluate_concurrency) {
            problems.push(format!("server.evaluate_concurrency: must be between 1 and 64, got {}", self.server.evaluate_concurrency));
        }
        if !(1024..=256 << 20).contains(&self.server.max_body_bytes) {
            problems.push(format!("server.max_body_bytes: must be between 1024 and 268435456, got {}", self.server.max_body_bytes));
        }
        if p.warm_max_calls == 0 {
            problems.push("policies.warm_max_calls: must be at least 1".into());
        }
        if p.max_file_bytes < 8 {
            problems.push(format!("policies.max_file_bytes: must be at least 8 (a component's header), got {}", p.max_file_bytes));
        }
        if self.journal.max_bytes < 16 << 20 {
            problems.push(format!("journal.max_bytes: must be at least 16 MiB (16777216), got {}", self.journal.max_bytes));
        }
        if self.journal.max_age_secs < 60 {
            problems.push(format!("journal.max_age_secs: must be at least 60, got {}", self.journal.max_age_secs));
        }
        if p.settle_ms > 60_000 {
            problems.push(format!("policies.settle_ms: must be at most 60000, got {}", p.settle_ms));
        }
        if let Some(le) = &self.leader_election {
            problems.extend(le.problems());
        }
        for (host, l) in &p.registries {
            let at = format!("policies.registries.\"{host}\"");
            match (&l.username, &l.password_file, &l.token_file) {
                (Some(_), _, Some(_)) => problems.push(format!("{at}: a username and a token_file; give one way to log in")),
                (None, Some(_), None) => problems.push(format!("{at}.password_file: needs a username")),
                (Some(_), None, None) => problems.push(format!("{at}.username: needs a password_file (the password is never in the config)")),
                (None, None, None) => problems.push(format!("{at}: give username and password_file, or token_file")),
                _ => {}
            }
        }
        for (id, r) in &p.remote {
            if let Err(e) = crate::policy::remote::parse(&r.source, r.sha256.as_deref(), r.follow_tag) {
                problems.push(format!("policies.remote.{id}.source: {e}"));
            }
        }
        for (i, k) in p.trusted_keys.iter().enumerate() {
            if minisign_verify::PublicKey::from_base64(k).is_err() {
                problems.push(format!("policies.trusted_keys[{i}]: not a minisign public key (the base64 line of a minisign .pub file)"));
            }
        }
        for (id, value) in &p.settings {
            if !value.is_table() {
                problems.push(format!("policies.settings.{id}: must be a table of settings, got {}", value.type_str()));
            }
        }
        pools::check(&self.pools, &self.sources, &mut problems);
        if let Some(d) = &self.demo {
            if !self.pools.iter().any(|p| p.id == d.pool) {
                problems.push(format!("demo.pool: no pool `{}` is configured", d.pool));
            }
            if d.day_secs == 0 || !(d.peak_rate.is_finite() && d.peak_rate >= 0.0) {
                problems.push("demo: day_secs and peak_rate must be positive".into());
            }
        }
        problems
    }

    pub fn sandbox_options(&self) -> SandboxOptions {
        let p = &self.policies;
        SandboxOptions {
            deadline: Duration::from_millis(p.deadline_ms),
            memory_limit: (p.memory_mib * 1024 * 1024) as usize,
            instance_mode: p.instance_mode.mode(p.warm_max_calls),
            per_policy: p
                .limits
                .iter()
                .map(|(id, l)| {
                    let limits = PolicyLimits {
                        deadline: l.deadline_ms.map(Duration::from_millis),
                        instance_mode: l.instance_mode.map(|m| m.mode(p.warm_max_calls)),
                    };
                    (id.clone(), limits)
                })
                .collect(),
            ..SandboxOptions::default()
        }
    }

    /// Each policy's settings as the JSON text policies receive, policy
    /// instances (see [`Instance`]) included.
    pub fn policy_settings(&self) -> HashMap<String, String> {
        let global = self.policies.settings.iter().map(|(id, v)| (id.clone(), serde_json::to_string(v).expect("TOML values are valid JSON")));
        global.chain(self.instances.iter().map(|(id, i)| (id.clone(), i.settings.clone()))).collect()
    }

    /// How the registry reads the policy directory.
    /// The remote policies, parsed (the config's checks refused bad ones).
    pub fn remote_sources(&self) -> Vec<(String, crate::policy::remote::Source)> {
        self.policies.remote.iter().filter_map(|(id, r)| Some((id.clone(), crate::policy::remote::parse(&r.source, r.sha256.as_deref(), r.follow_tag).ok()?))).collect()
    }

    /// How remote policies are fetched and checked.
    pub fn fetching(&self) -> crate::policy::remote::Fetching {
        let p = &self.policies;
        crate::policy::remote::Fetching {
            cache_dir: p.remote_dir.clone(),
            max_bytes: p.remote_max_bytes,
            timeout: Duration::from_millis(p.remote_timeout_ms),
            trusted_keys: p.trusted_keys.clone(),
            logins: p
                .registries
                .iter()
                .map(|(host, l)| (host.clone(), crate::policy::remote::Login { username: l.username.clone(), password_file: l.password_file.clone(), token_file: l.token_file.clone() }))
                .collect(),
        }
    }

    pub fn file_limits(&self) -> crate::policy::file::FileLimits {
        crate::policy::file::FileLimits { max_bytes: self.policies.max_file_bytes, settle: Duration::from_millis(self.policies.settle_ms) }
    }

    /// Which pools use each policy id (an instance's id where the pool
    /// has its own settings).
    pub fn policy_users(&self) -> BTreeMap<String, Vec<String>> {
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pool in &self.pools {
            for name in pool.policy_names() {
                let id = pool.instances.get(name).unwrap_or(name);
                let list = users.entry(id.clone()).or_default();
                if !list.contains(&pool.id) {
                    list.push(pool.id.clone());
                }
            }
        }
        users
    }

    /// Each policy instance's id and the policy it loads.
    pub fn policy_instances(&self) -> BTreeMap<String, String> {
        self.instances.iter().map(|(id, i)| (id.clone(), i.base.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_complete() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.policies.deadline_ms, 10);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:7070");
    }

    #[test]
    fn a_policy_gets_limits_of_its_own() {
        let c = Config::parse("[policies.limits.slow-py]\ndeadline_ms = 50\ninstance_mode = \"warm\"").unwrap();
        let o = c.sandbox_options();
        assert_eq!(o.deadline_for("slow-py"), Duration::from_millis(50));
        assert_eq!(o.deadline_for("other"), Duration::from_millis(10));
        assert_eq!(o.per_policy["slow-py"].instance_mode, Some(InstanceMode::Warm { max_calls: 10_000 }));
        assert_eq!(o.instance_mode, InstanceMode::Auto { max_calls: 10_000 }, "auto is the config's default");
        let err = Config::parse("[policies.limits.slow-py]\ndeadline_ms = 0").unwrap_err();
        assert!(err.contains("policies.limits.slow-py.deadline_ms"), "{err}");
        let err = Config::parse("[policies.limits.slow-py]\ndeadline = 5").unwrap_err();
        assert!(err.contains("deadline"), "{err}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = Config::parse("[policies]\ndeadline_msec = 5").unwrap_err();
        assert!(err.contains("deadline_msec"), "{err}");
        let err = Config::parse("[policies]\ndeadline_ms = 0").unwrap_err();
        assert!(err.contains("policies.deadline_ms"), "{err}");
        let err = Config::parse("[policies]\ninstance_mode = \"tepid\"").unwrap_err();
        assert!(err.contains("tepid"), "{err}");
        let err = Config::parse("[policies.settings]\nfoo = 3").unwrap_err();
        assert!(err.contains("policies.settings.foo"), "{err}");
        let err = Config::parse("[server]\nlisten = \"nowhere\"").unwrap_err();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn settings_become_json() {
        let c = Config::parse("[policies.settings.tt]\ntolerance = 0.2\nmetrics = [{ name = \"cpu\", target = 0.5 }]").unwrap();
        let s = &c.policy_settings()["tt"];
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        assert_eq!(v["metrics"][0]["target"], 0.5);
    }
}
