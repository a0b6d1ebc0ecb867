//! Carrying out each command of [`crate::cli`].

mod policy;
mod serve;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::Config;

pub use policy::{build_policy_crate, build_policy_crates};

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Policy { command } => policy::run(command),
        Command::Config { command: ConfigCommand::Check { file } } => {
            let config = Config::load(&file)?;
            println!(
                "ok: {} (policies from {}, API on {})",
                file.display(),
                config.policies.dir.display(),
                config.server.listen
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
