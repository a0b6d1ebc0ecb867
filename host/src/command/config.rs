//! `scalewise config check`: everything wrong with a config, each problem
//! with its field path, including what only the policies themselves can
//! say: a policy name no file defines, a file that does not load, a policy
//! in the wrong role, and settings its `validate-config` rejects.
//!
//! The rules are [`crate::config::check`]'s, the same a live reload
//! applies, so a config that passes here starts, and reloads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, ConfigError};

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
    // Remote policies are fetched (or found in the cache) and checked first,
    // as the host does.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (fetched, failures) = runtime.block_on(crate::policy::remote::fetch_all(config.remote_sources(), &config.fetching()));
    let remote = fetched.into_iter().map(|(id, f)| (id, f.path)).collect();
    let mut problems: Vec<String> = failures.iter().map(crate::policy::remote::problem).collect();
    problems.extend(crate::config::check::problems(&config, &dir, None, &remote)?);
    problems.extend(crate::service::advisor_problems(&config));
    if !problems.is_empty() {
        report(&file.display().to_string(), &problems);
        return Ok(ExitCode::FAILURE);
    }
    let referenced: usize = config.pools.iter().map(|p| crate::config::check::references(p).len()).sum();
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

