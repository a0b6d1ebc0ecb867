//! Carrying out each command of [`crate::cli`].

mod build;
mod config;
mod ctl;
mod journal;
mod new;
mod policy;
mod push;
mod replay;
mod serve;
mod simulate;
mod tune;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand, DemoCommand};

pub use build::{Language, build_policies, build_policy_crate, build_policy_crates, detect};
pub use new::write as new_project;

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Policy { command } => policy::run(command),
        Command::Simulate(args) => simulate::run(*args),
        Command::Tune(args) => tune::run(args),
        Command::Journal { at, command } => journal::run(at, command),
        Command::Ctl(args) => ctl::run(args),
        Command::Demo { command: DemoCommand::Worker { queue } } => {
            crate::demo::worker::run(&queue)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { command: ConfigCommand::Check { file, policy_dir } } => config::check(&file, policy_dir),
    }
}
