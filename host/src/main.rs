use std::process::ExitCode;

use clap::Parser;
use scalewise::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A simulation takes thousands of actions a second: only warnings by default.
    let simulating = matches!(cli.command, scalewise::cli::Command::Simulate(_));
    let filter = if simulating && cli.log == "info" { "warn" } else { &cli.log };
    scalewise::init_tracing(filter, cli.log_json);
    match scalewise::command::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
