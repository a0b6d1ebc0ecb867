//! Command-line parsing, and nothing else: [`crate::command`] carries the
//! commands out. Keeping the two apart keeps each command callable from tests
//! without going through argv.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "scalewise", version, about = "A WebAssembly-extensible autoscaling policy engine")]
pub struct Cli {
    /// Log filter, e.g. `info` or `scalewise=debug,scalewise::journal=trace`.
    /// Unset: `RUST_LOG`, then `info` (`warn` for `simulate`). A filter that
    /// does not parse is refused.
    #[arg(long, global = true, env = "SCALEWISE_LOG")]
    pub log: Option<String>,
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
    Simulate(Box<SimulateArgs>),
    /// Search a policy set's settings on a workload's history with the
    /// simulator: fit on the earlier part, choose and report on the later.
    Tune(TuneArgs),
    /// Read the decision journal: its size, new decisions, an export.
    Journal {
        #[command(flatten)]
        at: JournalAt,
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Talk to a running host: pools, decisions, scale, pause, approve,
    /// policies, promote, roll back, reload (the API the dashboard uses).
    Ctl(CtlArgs),
    /// The built-in demo's parts.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The host's API.
    #[arg(long, env = "SCALEWISE_URL", default_value = "http://127.0.0.1:7070", global = true)]
    pub url: String,
    /// The bearer token for calls that change something (`server.token`).
    #[arg(long, env = "SCALEWISE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Every pool: members, desired, bounds, mode, candidate.
    Pools,
    /// One pool in full.
    Pool { id: String },
    /// A pool's newest decisions, each explained (votes, consensus, clamps, action).
    Decisions {
        id: String,
        #[arg(long, short = 'n', default_value_t = 10)]
        limit: usize,
    },
    /// Scale a pool by hand, held against the policies for a while.
    Scale {
        id: String,
        capacity: u32,
        /// How long the policies may not move it (default: the pool's `manual_hold_secs`).
        #[arg(long)]
        hold_secs: Option<u64>,
        #[arg(long, default_value = "from the command line")]
        reason: String,
    },
    /// Stop acting (decisions go on, marked paused).
    Pause { id: String },
    /// Act again.
    Resume { id: String },
    /// Carry out a change held for approval.
    Approve { id: String, seq: u64 },
    /// Every policy: serving version, calls, errors, who uses it.
    Policies,
    /// Make a pool's candidate set the serving one.
    Promote { id: String },
    /// Return a pool to the set its last promotion replaced.
    Rollback { id: String },
    /// Reload the host's config file now.
    Reload,
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

/// Which journal: a file, or a running host that holds it.
#[derive(Debug, Args)]
pub struct JournalAt {
    /// The config whose `journal.path` (and `server.listen`) to use.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// The journal file (default: the config's, or .scalewise/journal.redb).
    #[arg(long, global = true)]
    pub journal: Option<PathBuf>,
    /// Read through a running host's API (`http://127.0.0.1:7070`). Used
    /// by default, at the config's `server.listen`, when a running host
    /// holds the journal file.
    #[arg(long, global = true)]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// The journal's size and retention, and each pool's oldest and newest decision.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the newest decisions, then follow new ones as a host makes them.
    Tail {
        /// Only these pools (default: all).
        #[arg(long)]
        pool: Vec<String>,
        /// How many of the newest decisions to print first.
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: usize,
        /// Stop after this many new decisions (default: follow until interrupted).
        #[arg(long)]
        max: Option<usize>,
        /// How often to look for new decisions, in ms.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Every decision as JSON lines, oldest first, by pool and time range.
    Export {
        /// Only these pools (default: all).
        #[arg(long)]
        pool: Vec<String>,
        /// From this time: Unix milliseconds, or an age like `90s`, `30m`, `6h`, `7d`.
        #[arg(long)]
        since: Option<String>,
        /// Up to this time, in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// Write here instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
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
pub struct TuneArgs {
    /// The tune file: history, split, objective, baseline, search, candidates.
    pub spec: PathBuf,
    /// Use this trace (CSV `step,load`) as the history instead of the file's.
    #[arg(long, conflicts_with_all = ["from_prometheus", "from_journal"])]
    pub trace: Option<PathBuf>,
    /// Take the history from a pool's own journal instead: the samples of
    /// --metric its decisions saw, averaged per step; written to
    /// OUT/history.csv, then tuned on. The host must be stopped (a journal
    /// opens in one process at a time).
    #[arg(long, value_name = "JOURNAL", requires = "metric", conflicts_with = "from_prometheus")]
    pub from_journal: Option<PathBuf>,
    /// With --from-journal: the pool (default: the journal's only one).
    #[arg(long, requires = "from_journal")]
    pub pool: Option<String>,
    /// With --from-journal: the metric that is the workload's load.
    #[arg(long, requires = "from_journal")]
    pub metric: Option<String>,
    /// Take the history from a Prometheus range query instead (the URL of
    /// its HTTP API); it is written to OUT/history.csv, then tuned on.
    #[arg(long, value_name = "URL", requires = "query")]
    pub from_prometheus: Option<String>,
    /// With --from-prometheus: the PromQL of the workload's load (one
    /// series; a pool-wide total: requests per step, jobs queued...).
    #[arg(long, requires = "from_prometheus")]
    pub query: Option<String>,
    /// With --from-prometheus: from this time (Unix ms, or an age: 90s, 30m, 6h, 14d).
    #[arg(long, default_value = "14d", requires = "from_prometheus")]
    pub since: String,
    /// With --from-prometheus: up to this time (default: now).
    #[arg(long, requires = "from_prometheus")]
    pub until: Option<String>,
    /// Candidate runs on the fit part (overrides `search.runs`).
    #[arg(long)]
    pub runs: Option<u32>,
    /// Stop searching after this many seconds (overrides `search.seconds`).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Candidates run at once (overrides `search.parallel`; default: the cores).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Where to write tune.json, chosen.toml and report.html.
    #[arg(long, default_value = "tune")]
    pub out: PathBuf,
    /// Load every config's policies from this directory.
    #[arg(long)]
    pub policy_dir: Option<PathBuf>,
    /// The compile cache for policy components.
    #[arg(long, default_value = ".scalewise/cache")]
    pub cache_dir: PathBuf,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The simulation file: environment, traces and policy sets.
    #[arg(required_unless_present_any = ["from_journal", "from_prometheus"])]
    pub spec: Option<PathBuf>,
    /// Replay a pool's own decisions from this journal instead of traces:
    /// each decision taken again by the pool's serving set, with a
    /// candidate set's decision beside it. Needs --config.
    #[arg(long, value_name = "JOURNAL", requires = "config", conflicts_with_all = ["spec", "trace", "journal"])]
    pub from_journal: Option<PathBuf>,
    /// Replay a pool's history as a Prometheus kept it instead of traces:
    /// the serving set and a candidate decide at each step on the metrics
    /// and capacity it recorded, beside the desired capacity the host
    /// exported. A URL, or the name of a `[sources.*]` Prometheus in
    /// --config (with its credentials). Needs --config.
    #[arg(long, value_name = "URL|SOURCE", requires = "config", conflicts_with_all = ["spec", "trace", "journal", "from_journal"])]
    pub from_prometheus: Option<String>,
    /// With --from-prometheus: from this time (Unix ms, or an age: 90s, 30m, 6h, 7d).
    #[arg(long, default_value = "1h", requires = "from_prometheus")]
    pub since: String,
    /// With --from-prometheus: up to this time (default: now).
    #[arg(long, requires = "from_prometheus")]
    pub until: Option<String>,
    /// With --from-prometheus: one decision every this many ms (default:
    /// the pool's interval, at least 1000).
    #[arg(long, requires = "from_prometheus")]
    pub step_ms: Option<u64>,
    /// The host config that names the pool's sets (with --from-journal or
    /// --from-prometheus).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The pool to replay (default: the journal's, or the config's, only pool).
    #[arg(long)]
    pub pool: Option<String>,
    /// Compare with this config's serving set for the pool (or for its
    /// only pool), instead of the pool's own `candidate`.
    #[arg(long, value_name = "CONFIG")]
    pub candidate: Option<PathBuf>,
    /// Replay only the decisions from this seq on.
    #[arg(long, requires = "from_journal")]
    pub from_seq: Option<u64>,
    /// Replay only the decisions up to this seq.
    #[arg(long, requires = "from_journal")]
    pub to_seq: Option<u64>,
    /// Replay these traces instead of the file's (CSV `step,load`; `-` is stdin).
    #[arg(long)]
    pub trace: Vec<PathBuf>,
    /// Where to write report.html, results.json and results.csv.
    #[arg(long, default_value = "simulation")]
    pub out: PathBuf,
    /// Stop each trace after this many steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Run this share of each trace, from its start, without scoring it
    /// (replaces the file's `warmup`; 0.6 scores what `scalewise tune`
    /// holds back).
    #[arg(long, value_name = "SHARE")]
    pub warmup: Option<f64>,
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
    /// Write a new policy project (Rust, Python or JavaScript) that builds
    /// and passes its own tests as it is.
    New {
        /// The policy's name and id: lowercase letters, digits and dashes.
        name: String,
        #[arg(long, default_value = "rust", value_parser = ["rust", "python", "js"])]
        lang: String,
        #[arg(long, default_value = "strategy", value_parser = ["strategy", "cost-rule", "consensus"])]
        role: String,
        /// Where to write it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// For Rust: the SDK dependency, as a path or a git URL (default: this
        /// binary's checkout when it still exists, else the project's git).
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Build policy projects (Rust crates, Python or JavaScript projects,
    /// told apart by their files) into components.
    Build {
        /// Project directories (default: every project under ./policies).
        projects: Vec<PathBuf>,
        /// Where to write `<name>.wasm`.
        #[arg(long, default_value = "target/policies")]
        out_dir: PathBuf,
    },
    /// Publish a built policy (`.wasm` or `.rhai`) to an OCI registry, and
    /// print the reference to pin it by (`oci://…@sha256:…`).
    Push {
        file: PathBuf,
        /// `oci://host[:port]/repository:tag`.
        reference: String,
        /// A detached minisign signature of FILE (`minisign -S -m FILE`),
        /// pushed beside it; hosts with `policies.trusted_keys` require one.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Log in to the registry as this user (with --password-file).
        #[arg(long, requires = "password_file")]
        username: Option<String>,
        /// A file holding the password for --username.
        #[arg(long, requires = "username")]
        password_file: Option<PathBuf>,
        /// A file holding a bearer token, instead of a username.
        #[arg(long, conflicts_with = "username")]
        token_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate a config file, load its policies as the host
    /// would, and report every problem with its field path.
    Check {
        file: PathBuf,
        /// Load the policies from here instead of the config's `policies.dir`.
        #[arg(long)]
        policy_dir: Option<PathBuf>,
    },
}
