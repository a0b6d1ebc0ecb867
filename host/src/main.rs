use std::process::ExitCode;

use clap::Parser;
use scalewise::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A simulation takes thousands of actions a second: only warnings by default.
    let simulating = matches!(cli.command, scalewise::cli::Command::Simulate(_) | scalewise::cli::Command::Tune(_));
    let rust_log = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let (filter, from) = match (&cli.log, &rust_log) {
        (Some(f), _) => (f.as_str(), "--log / SCALEWISE_LOG"),
        (None, Some(f)) => (f.as_str(), "RUST_LOG"),
        (None, None) => (if simulating { "warn" } else { "info" }, "the default"),
    };
    if let Err(e) = scalewise::init_tracing(filter, cli.log_json) {
        eprintln!("error: the log filter `{filter}` from {from} does not parse: {e}; give levels like `info` or `scalewise=debug,warn`");
        return ExitCode::from(2);
    }
    match scalewise::command::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
