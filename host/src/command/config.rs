//! `scalewise config check`: everything wrong with a config, each problem
//! with its field path, including what only the policies themselves can
//! say: a policy name no file defines, a file that does not load, a policy
//! in the wrong role, and settings its `validate-config` rejects.
//!
//! The policies are loaded exactly as the host loads them (the same
//! registry, limits and settings, policy instances included), so a config
//! that passes here starts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::policy::cache::ArtifactCache;
use crate::policy::file::FileLimits;
use crate::policy::{PolicyEngine, Registry, Role};

pub fn check(file: &Path, policy_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(ConfigError::Invalid { path, message }) => {
            report(&path, &message.lines().map(str::to_owned).collect::<Vec<_>>());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let dir = policy_dir.unwrap_or_else(|| config.policies.dir.clone());
    let mut problems = crate::config::cloud::unbuilt(&config);
    problems.extend(policy_problems(&config, &dir)?);
    if !problems.is_empty() {
        report(&file.display().to_string(), &problems);
        return Ok(ExitCode::FAILURE);
    }
    let referenced: usize = config.pools.iter().map(|p| references(p).len()).sum();
    println!(
        "ok: {} (policies from {}, {referenced} reference{} checked, API on {}, {} pool{})",
        file.display(),
        dir.display(),
        if referenced == 1 { "" } else { "s" },
        config.server.listen,
        config.pools.len(),
        if config.pools.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

fn report(path: &str, problems: &[String]) {
    let n = problems.len();
    eprintln!("{path}: {n} problem{}", if n == 1 { "" } else { "s" });
    for line in problems {
        eprintln!("  {line}");
    }
}

/// Each policy a pool names: its field path, the name, and the role it must play.
fn references(pool: &crate::config::PoolConfig) -> Vec<(String, String, Role)> {
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
    out
}

/// Load the policy directory as the host would and check every reference.
fn policy_problems(config: &Config, dir: &Path) -> anyhow::Result<Vec<String>> {
    if config.pools.iter().all(|p| references(p).is_empty()) {
        return Ok(Vec::new()); // nothing to load: a host with no pools yet
    }
    if !dir.is_dir() {
        return Ok(vec![format!("policies.dir: {} is not a directory; build the policies into it (`scalewise policy build --out-dir {}`) or pass --policy-dir", dir.display(), dir.display())]);
    }
    // The compile cache only if it is there already: a check leaves no files behind.
    let cache = config.policies.cache_dir.as_deref().filter(|d| d.is_dir()).and_then(|d| ArtifactCache::new(d).ok());
    let engine = Arc::new(PolicyEngine::new(config.sandbox_options(), cache)?);
    let registry = Registry::new(engine, dir, config.policy_settings())
        .with_instances(config.policy_instances())
        .with_file_limits(FileLimits { settle: Duration::ZERO, ..config.file_limits() });
    registry.rescan();
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

/// How a [`crate::policy::LoadError::Config`] reads, before its reason.
const REJECTED: &str = "the policy rejected its settings: ";
