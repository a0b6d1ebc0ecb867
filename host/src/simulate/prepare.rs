//! Policy sets made ready to run: a config's pool and a registry holding
//! just its policies, loaded once and shared by every trace.
//!
//! `scalewise simulate` prepares the sets its file names; `scalewise tune`
//! prepares each candidate from a config it changed in memory. Either way a
//! set that cannot load fails alone, with the reason, and the others run.

use std::path::Path;
use std::sync::Arc;

use super::run::RunOptions;
use super::source::provides;
use super::spec::{Fixed, SetSpec, SimSpec};
use crate::config::{Config, PoolConfig};
use crate::policy::{PolicyEngine, Registry};

/// A set ready to run: its pool and policies, loaded once for every trace.
#[derive(Clone)]
pub enum Prepared {
    Pool { pool: Box<PoolConfig>, experts: Arc<Registry> },
    Fixed(Fixed),
    Failed(String),
}

impl Prepared {
    /// Policy calls a step costs: what makes one set slower than another.
    pub fn calls_per_step(&self) -> usize {
        match self {
            Prepared::Pool { pool, .. } => pool.strategies.len() + pool.consensus.iter().len() + pool.cost_rules.len(),
            _ => 0,
        }
    }
}


/// Load each set's config and policies. A set that cannot load is failed,
/// with the reason; the others go on.
pub fn prepare(spec: &SimSpec, options: &RunOptions, engine: &Arc<PolicyEngine>) -> Vec<(String, Prepared)> {
    spec.sets.iter().map(|s| (s.name.clone(), prepare_set(s, options, engine).unwrap_or_else(Prepared::Failed))).collect()
}

fn prepare_set(s: &SetSpec, options: &RunOptions, engine: &Arc<PolicyEngine>) -> Result<Prepared, String> {
    if let Some(f) = &s.fixed {
        return Ok(Prepared::Fixed(f.clone()));
    }
    let path = s.config.as_ref().expect("checked: config or fixed");
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let pool = match &s.pool {
        Some(id) => config.pools.iter().find(|p| &p.id == id).ok_or_else(|| format!("{}: no pool `{id}`", path.display()))?,
        None if config.pools.len() == 1 => &config.pools[0],
        None => return Err(format!("{}: {} pools; name one with `pool = \"…\"`", path.display(), config.pools.len())),
    };
    prepare_config(&config, pool, options, engine).map_err(|e| format!("{}: {e}", path.display()))
}

/// A set from a config already in memory: `pool` with `config`'s policy
/// settings, its policies from `options.policy_dir` or the config's
/// directory. `scalewise tune` builds each candidate this way.
pub fn prepare_config(config: &Config, pool: &PoolConfig, options: &RunOptions, engine: &Arc<PolicyEngine>) -> Result<Prepared, String> {
    for (i, m) in pool.metrics.iter().enumerate() {
        let q = m.query.as_deref().unwrap_or(&m.name);
        if !provides(q) {
            return Err(format!("pools.metrics[{i}]: the simulator has no series `{q}`; use one of {}", super::source::SERIES.join(", ")));
        }
    }
    let dir = options.policy_dir.clone().unwrap_or_else(|| config.policies.dir.clone());
    let registry = registry_for(config, pool, &dir, engine)?;
    Ok(Prepared::Pool { pool: Box::new(pool.clone()), experts: registry })
}

/// A registry holding just the policies `pool` uses, with `config`'s
/// settings: the directory may hold policies other sets configure
/// differently. Fails with every policy that is missing or does not load.
pub fn registry_for(config: &Config, pool: &PoolConfig, dir: &Path, engine: &Arc<PolicyEngine>) -> Result<Arc<Registry>, String> {
    let registry = Arc::new(Registry::new(engine.clone(), dir.to_owned(), config.policy_settings()));
    let mut needed: Vec<&String> = pool.strategies.iter().map(|s| &s.policy).collect();
    needed.extend(pool.consensus.iter());
    needed.extend(pool.cost_rules.iter());
    let mut problems = Vec::new();
    for id in needed {
        let file = ["wasm", "rhai"].iter().map(|ext| dir.join(format!("{id}.{ext}"))).find(|p| p.is_file());
        match file {
            None => problems.push(format!("`{id}` is not in {} (no {id}.wasm or {id}.rhai)", dir.display())),
            Some(path) => {
                let instance = pool.instances.get(id).unwrap_or(id);
                if let Err(e) = registry.load_as(instance, &path) {
                    problems.push(format!("`{id}` failed to load: {e}"));
                }
            }
        }
    }
    if problems.is_empty() { Ok(registry) } else { Err(problems.join("; ")) }
}
