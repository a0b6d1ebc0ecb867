//! `scalewise simulate --from-journal JOURNAL --config CONFIG [--pool ID]`:
//! a pool's own history decided again by its serving set, with a
//! candidate's decisions beside it (see [`crate::simulate::replay`]).
//!
//! The policies are loaded as `config check` loads them (the config's
//! directory, settings, instances and remote copies), so what is replayed
//! is what that config would serve. The journal is opened to read only; a
//! host that holds it must be stopped first (redb lets one process open a
//! file), and the error says so.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::SimulateArgs;
use crate::config::{Config, PoolConfig};
use crate::decide::budget::rfc3339;
use crate::decide::pipeline::PoolPlan;
use crate::journal::{Journal, JournalError};
use crate::policy::Registry;
use crate::simulate::replay::{self, Replay, ReplaySet, ReplaySummary, Step};

/// How many differing steps are printed.
const SHOWN: usize = 10;

pub fn run(args: &SimulateArgs, journal_path: &Path) -> anyhow::Result<ExitCode> {
    let config_path = args.config.as_deref().context("--from-journal needs --config: the host config that names the pool's policies")?;
    let journal = match Journal::open_to_read(journal_path) {
        Ok(j) => j,
        Err(JournalError::Open { detail, .. }) if detail.contains("another process") => {
            bail!("a running host holds {}; stop it (or its replica) and replay then: a journal file opens in one process at a time", journal_path.display())
        }
        Err(e) => return Err(e.into()),
    };
    let pool_id = match &args.pool {
        Some(p) => p.clone(),
        None => match journal.pools().as_slice() {
            [one] => one.clone(),
            [] => bail!("{} holds no decisions", journal_path.display()),
            many => bail!("{} holds {} pools ({}); name one with --pool", journal_path.display(), many.len(), many.join(", ")),
        },
    };
    if !journal.pools().contains(&pool_id) {
        bail!("{} holds no decisions of pool `{pool_id}`; it has: {}", journal_path.display(), journal.pools().join(", "));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let serving = Loaded::new(config_path, &pool_id, false, args, &runtime)?;
    let other = match &args.candidate {
        Some(path) => Some(Loaded::new(path, &pool_id, true, args, &runtime)?),
        None => None,
    };
    let candidate = match (&other, &serving.plan.candidate) {
        (Some(o), _) => Some(ReplaySet { plan: &o.plan, experts: o.registry.as_ref() }),
        (None, Some(c)) => Some(ReplaySet { plan: c.as_ref(), experts: serving.registry.as_ref() }),
        (None, None) => None,
    };
    let candidate_set = candidate.as_ref().map(|c| c.plan.describe());
    let r = Replay { serving: ReplaySet { plan: &serving.plan, experts: serving.registry.as_ref() }, candidate, from_seq: args.from_seq.unwrap_or(0), to_seq: args.to_seq.unwrap_or(u64::MAX) };

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let csv_path = args.out.join("steps.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path).with_context(|| format!("creating {}", csv_path.display()))?);
    writeln!(csv, "seq,at,mode,running,booting,recorded,replayed,reproduced,candidate,shadow_recorded,differs")?;
    let mut shown: Vec<Step> = Vec::new();
    let mut write_error = None;
    let summary = replay::replay(&journal, &pool_id, &r, |st| {
        if !st.reproduced && shown.len() < SHOWN {
            shown.push(st.clone());
        }
        let opt = |v: Option<u32>| v.map_or(String::new(), |v| v.to_string());
        let mode = serde_json::to_value(st.mode).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let differs = st.differs.as_deref().unwrap_or("").replace('"', "\"\"");
        if let Err(e) = writeln!(csv, "{},{},{mode},{},{},{},{},{},{},{},\"{differs}\"", st.seq, st.at, st.running, st.booting, st.recorded, st.replayed, st.reproduced, opt(st.candidate), opt(st.shadow_recorded)) {
            write_error.get_or_insert(e);
        }
    })?;
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {}", csv_path.display()));
    }
    csv.flush()?;
    let report = serde_json::json!({ "serving": serving.plan.describe(), "candidate_set": candidate_set, "summary": &summary });
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(args.out.join("replay.json"), &json).with_context(|| format!("writing {}", args.out.join("replay.json").display()))?;
    if args.json {
        println!("{json}");
    } else {
        print!("{}", table(&summary, &serving.plan, candidate_set.as_deref(), &shown));
        println!("every step: {}", csv_path.display());
    }
    if summary.replayed == 0 {
        eprintln!("nothing was replayed: {}", if summary.skipped > 0 { "every policy decision was skipped (see above)" } else { "no policy decision in the span" });
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A config's set for the pool, with its policies loaded.
struct Loaded {
    plan: PoolPlan,
    registry: Arc<Registry>,
}

impl Loaded {
    fn new(path: &Path, pool_id: &str, candidate: bool, args: &SimulateArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Loaded> {
        let config = Config::load(path)?;
        // A candidate's config may name its one pool otherwise.
        let only = (candidate && config.pools.len() == 1).then(|| &config.pools[0]);
        let pool: &PoolConfig = config.pools.iter().find(|p| p.id == pool_id).or(only).with_context(|| {
            let ids: Vec<&str> = config.pools.iter().map(|p| p.id.as_str()).collect();
            format!("{} has no pool `{pool_id}` (it has: {})", path.display(), ids.join(", "))
        })?;
        let dir = args.policy_dir.clone().unwrap_or_else(|| config.policies.dir.clone());
        let (fetched, failures) = runtime.block_on(crate::policy::remote::fetch_all(config.remote_sources(), &config.fetching()));
        let mut problems: Vec<String> = failures.iter().map(crate::policy::remote::problem).collect();
        let remote = fetched.into_iter().map(|(id, f)| (id, f.path)).collect();
        let registry = crate::config::check::registry(&config, &dir, None, &remote)?;
        for (field, name, _) in crate::config::check::references(pool) {
            let id = pool.instances.get(&name).unwrap_or(&name);
            if registry.get(id).is_none() {
                let why = registry.status_of(id).and_then(|s| s.last_load_error).map_or_else(|| format!("no {name}.wasm or {name}.rhai in {}", dir.display()), |e| e.message);
                problems.push(format!("pools.{pool_id}.{field}: `{name}` does not load: {why}"));
            }
        }
        if !problems.is_empty() {
            bail!("{}: the pool's policies cannot be replayed:\n  {}", path.display(), problems.join("\n  "));
        }
        let mut plan = crate::service::plan(&PoolConfig { candidate: None, ..pool.clone() });
        plan.id = pool_id.to_owned();
        if !candidate {
            plan.candidate = crate::service::plan(pool).candidate;
        }
        Ok(Loaded { plan, registry: Arc::new(registry) })
    }
}

/// The replay for people.
fn table(s: &ReplaySummary, serving: &PoolPlan, candidate: Option<&str>, shown: &[Step]) -> String {
    let mut out = String::new();
    let span = match (s.first_seq, s.last_seq, s.first_at, s.last_at) {
        (Some(a), Some(b), Some(ta), Some(tb)) => format!("decisions {a}..{b} ({} to {})", rfc3339(ta), rfc3339(tb)),
        _ => "no decisions in the span".into(),
    };
    out.push_str(&format!("pool {}: {span}\n", s.pool));
    out.push_str(&format!("serving {}: {} replayed, {} reproduced, {} differed", serving.describe(), s.replayed, s.reproduced, s.differed));
    out.push_str(&format!("; {} skipped, {} operator changes, {} lifecycle records\n", s.skipped, s.operator, s.lifecycle.len()));
    if let (Some(c), Some(set)) = (&s.candidate, candidate) {
        out.push_str(&format!(
            "candidate {set}: differs on {} of {} steps ({} higher, {} lower), mean |diff| {:.2}, max {}; member-hours {:.2} recorded, {:.2} candidate",
            c.differed, c.steps, c.higher, c.lower, c.mean_abs_diff, c.max_abs_diff, c.recorded_member_hours, c.candidate_member_hours
        ));
        if c.shadow_recorded > 0 {
            out.push_str(&format!("; agrees with the live shadow on {} of {}", c.shadow_agreed, c.shadow_recorded));
        }
        out.push('\n');
    }
    if !shown.is_empty() {
        out.push_str("first differences:\n");
        for st in shown {
            out.push_str(&format!("  seq {} at {}: recorded {}, replayed {}: {}\n", st.seq, rfc3339(st.at), st.recorded, st.replayed, st.differs.as_deref().unwrap_or("")));
        }
    }
    if !s.skipped_first.is_empty() {
        out.push_str("skipped:\n");
        for k in &s.skipped_first {
            out.push_str(&format!("  seq {}: {}\n", k.seq, k.why));
        }
    }
    for l in &s.lifecycle {
        out.push_str(&format!("lifecycle {l}\n"));
    }
    out
}
