use std::process::ExitCode;

use clap::Parser;
use scalewise::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    scalewise::init_tracing(&cli.log, cli.log_json);
    match scalewise::command::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
