//! Carrying out each command of [`crate::cli`].

mod journal;
mod policy;
mod serve;
mod simulate;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand, DemoCommand};
use crate::config::Config;

pub use policy::{build_policy_crate, build_policy_crates};

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Policy { command } => policy::run(command),
        Command::Simulate(args) => simulate::run(args),
        Command::Journal { at, command } => journal::run(at, command),
        Command::Demo { command: DemoCommand::Worker { queue } } => {
            crate::demo::worker::run(&queue)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { command: ConfigCommand::Check { file } } => {
            let config = match Config::load(&file) {
                Ok(c) => c,
                Err(crate::config::ConfigError::Invalid { path, message }) => {
                    let n = message.lines().count();
                    eprintln!("{path}: {n} problem{}", if n == 1 { "" } else { "s" });
                    for line in message.lines() {
                        eprintln!("  {line}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            };
            println!(
                "ok: {} (policies from {}, API on {}, {} pool{})",
                file.display(),
                config.policies.dir.display(),
                config.server.listen,
                config.pools.len(),
                if config.pools.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
