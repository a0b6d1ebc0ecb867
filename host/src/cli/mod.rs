//! Command-line parsing, and nothing else: [`crate::command`] carries the
//! commands out. Keeping the two apart keeps each command callable from tests
//! without going through argv.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "scalewise", version, about = "A WebAssembly-extensible autoscaling policy engine")]
pub struct Cli {
    /// Log filter, e.g. `info` or `scalewise=debug` (RUST_LOG syntax).
    #[arg(long, global = true, env = "SCALEWISE_LOG", default_value = "info")]
    pub log: String,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host: watch the policy directory and serve the HTTP API.
    Serve(ServeArgs),
    /// Build, check, test and benchmark policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Replay load traces through policy sets under a virtual clock and
    /// compare them (elasticity metrics, cost, the clairvoyant oracle).
    Simulate(SimulateArgs),
    /// The built-in demo's parts.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// A demo pool member: takes jobs from the host's demo queue until drained.
    Worker {
        /// The demo queue's URL.
        #[arg(long, env = "SCALEWISE_DEMO_QUEUE", default_value = "http://127.0.0.1:7070/demo")]
        queue: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML configuration file (every field has a default).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Override `policies.dir` from the config.
    #[arg(long)]
    pub policy_dir: Option<PathBuf>,
    /// Override `server.listen` from the config.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The simulation file: environment, traces and policy sets.
    pub spec: PathBuf,
    /// Replay these traces instead of the file's (CSV `step,load`; `-` is stdin).
    #[arg(long)]
    pub trace: Vec<PathBuf>,
    /// Where to write report.html, results.json and results.csv.
    #[arg(long, default_value = "simulation")]
    pub out: PathBuf,
    /// Stop each trace after this many steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Load every set's policies from this directory.
    #[arg(long)]
    pub policy_dir: Option<PathBuf>,
    /// The compile cache for policy components.
    #[arg(long, default_value = ".scalewise/cache")]
    pub cache_dir: PathBuf,
    /// Also journal every decision, one redb file per trace and set, under OUT/journal.
    #[arg(long)]
    pub journal: bool,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SettingsArg {
    /// The policy's settings as JSON (`{"target": 0.7}`), or `@FILE` to read them.
    #[arg(long)]
    pub settings: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: its world, contract version, imports and settings.
    Check {
        file: PathBuf,
        #[command(flatten)]
        settings: SettingsArg,
    },
    /// Evaluate a policy once on an input file and print the output as JSON.
    Test {
        file: PathBuf,
        /// The role's input as JSON (see docs/POLICIES.md); its `settings`
        /// field is used unless --settings is given.
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        settings: SettingsArg,
    },
    /// Measure evaluation latency with fresh and with reused instances.
    Bench {
        file: PathBuf,
        /// The input to evaluate (default: a built-in sample input).
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long, default_value_t = 5000)]
        iterations: u32,
        #[command(flatten)]
        settings: SettingsArg,
    },
    /// Build policy crates into components that import only what the contract gives.
    Build {
        /// Crate directories (default: every crate under ./policies).
        crates: Vec<PathBuf>,
        /// Where to write `<crate-name>.wasm`.
        #[arg(long, default_value = "target/policies")]
        out_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate a config file; report every problem with its field.
    Check { file: PathBuf },
}
