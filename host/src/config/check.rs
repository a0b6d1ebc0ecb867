//! Everything wrong with a config, each problem with its field path,
//! including what only the policies themselves can say: a policy name no
//! file defines, a file that does not load, a policy in the wrong role,
//! and settings its `validate-config` rejects.
//!
//! Why one module for it: `config check` and a live reload must refuse the
//! same configs, so both call [`problems`]. The policies are loaded exactly
//! as the host loads them (the same registry, limits and settings, policy
//! instances included), in a registry of their own that serves nothing, so
//! a config that passes here starts, and a reload that passes here applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Config;
use crate::policy::cache::ArtifactCache;
use crate::policy::file::FileLimits;
use crate::policy::{PolicyEngine, Registry, Role};

/// Every problem of `config` with its policies in `dir`: the fields a
/// binary without a cargo feature cannot serve, then each policy reference.
/// `engine` is the live host's, when there is one (its compile cache
/// makes a reload's check quick); otherwise one is made for the check.
/// `remote`: the remote policies, already fetched and checked (id → copy).
pub fn problems(config: &Config, dir: &Path, engine: Option<Arc<PolicyEngine>>, remote: &BTreeMap<String, PathBuf>) -> anyhow::Result<Vec<String>> {
    let mut problems = super::cloud::unbuilt(config);
    problems.extend(policy_problems(config, dir, engine, remote)?);
    Ok(problems)
}

/// Each policy a pool names: its field path, the name, and the role it must play.
pub fn references(pool: &crate::config::PoolConfig) -> Vec<(String, String, Role)> {
    let mut out: Vec<(String, String, Role)> = Vec::new();
    for (j, s) in pool.strategies.iter().enumerate() {
        out.push((format!("strategies[{j}].policy"), s.policy.clone(), Role::Strategy));
    }
    if let Some(c) = &pool.consensus {
        out.push(("consensus".into(), c.clone(), Role::Consensus));
    }
    for (k, c) in pool.cost_rules.iter().enumerate() {
        out.push((format!("cost_rules[{k}]"), c.clone(), Role::CostRule));
    }
    if let Some(c) = &pool.candidate {
        for (j, s) in c.strategies.iter().enumerate() {
            out.push((format!("candidate.strategies[{j}].policy"), s.policy.clone(), Role::Strategy));
        }
        if let Some(x) = &c.consensus {
            out.push(("candidate.consensus".into(), x.clone(), Role::Consensus));
        }
        for (k, x) in c.cost_rules.iter().enumerate() {
            out.push((format!("candidate.cost_rules[{k}]"), x.clone(), Role::CostRule));
        }
    }
    out
}

/// Load the policy directory as the host would and check every reference.
fn policy_problems(config: &Config, dir: &Path, engine: Option<Arc<PolicyEngine>>, remote: &BTreeMap<String, PathBuf>) -> anyhow::Result<Vec<String>> {
    if config.pools.iter().all(|p| references(p).is_empty()) {
        return Ok(Vec::new()); // nothing to load: a host with no pools yet
    }
    if !dir.is_dir() {
        return Ok(vec![format!("policies.dir: {} is not a directory; build the policies into it (`scalewise policy build --out-dir {}`) or pass --policy-dir", dir.display(), dir.display())]);
    }
    let registry = registry(config, dir, engine, remote)?;
    let mut problems = Vec::new();
    for (i, pool) in config.pools.iter().enumerate() {
        for (field, name, role) in references(pool) {
            let at = format!("pools[{i}].{field}");
            let instance = pool.instances.get(&name);
            let id = instance.unwrap_or(&name);
            let settings_at = match instance {
                Some(_) => format!("pools[{i}].settings.{name} over policies.settings.{name}"),
                None => format!("policies.settings.{name}"),
            };
            match registry.get(id) {
                Some(p) if p.role() != role => problems.push(format!("{at}: `{name}` is a {}, not a {role}", p.role())),
                Some(_) => {}
                None => match registry.status_of(id).and_then(|s| s.last_load_error) {
                    Some(e) if e.message.contains(REJECTED) => {
                        let why = e.message.split_once(REJECTED).map_or(e.message.as_str(), |(_, why)| why);
                        problems.push(format!("{at}: `{name}` rejected its settings ({settings_at}): {why}"));
                    }
                    Some(e) => problems.push(format!("{at}: `{name}` does not load: {}", e.message)),
                    None => problems.push(format!("{at}: no policy file defines `{name}` in {} (looked for {name}.wasm and {name}.rhai)", dir.display())),
                },
            }
        }
    }
    Ok(problems)
}

/// The config's policies loaded exactly as the host loads them (settings,
/// instances, remote copies, file limits), in a registry of their own that
/// serves only its caller: a check, or a replay of a pool's journal.
pub fn registry(config: &Config, dir: &Path, engine: Option<Arc<PolicyEngine>>, remote: &BTreeMap<String, PathBuf>) -> anyhow::Result<Registry> {
    // The compile cache only if it is there already: a check leaves no files behind.
    let engine = match engine {
        Some(e) => e,
        None => {
            let cache = config.policies.cache_dir.as_deref().filter(|d| d.is_dir()).and_then(|d| ArtifactCache::new(d).ok());
            Arc::new(PolicyEngine::new(config.sandbox_options(), cache)?)
        }
    };
    let registry = Registry::new(engine, dir, config.policy_settings())
        .for_checking()
        .with_remote(remote.clone())
        .with_instances(config.policy_instances())
        .with_file_limits(FileLimits { settle: Duration::ZERO, ..config.file_limits() });
    registry.rescan();
    Ok(registry)
}

/// How a [`crate::policy::LoadError::Config`] reads, before its reason.
const REJECTED: &str = "the policy rejected its settings: ";
