//! `scalewise simulate --from-journal JOURNAL --config CONFIG [--pool ID]`:
//! a pool's own history decided again by its serving set, with a
//! candidate's decisions beside it (see [`crate::simulate::replay`]).
//! `--from-prometheus URL|SOURCE` does the same on what a Prometheus kept
//! of the pool ([`prometheus`]): the series are fetched here, in range
//! queries of at most 10,000 points, then replayed.
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
use std::time::Duration;

use anyhow::{Context, bail};
use scalewise_providers::sources::prometheus::PrometheusSource;
use scalewise_providers::sources::{MetricSource, Window};
use scalewise_sdk::Sample;

use crate::cli::SimulateArgs;
use crate::config::{Config, PoolConfig, SourceConfig};
use crate::decide::budget::rfc3339;
use crate::decide::pipeline::PoolPlan;
use crate::journal::{Journal, JournalError};
use crate::policy::Registry;
use crate::simulate::replay::{self, Replay, ReplaySet, ReplaySummary, Step, prometheus};

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
    let (serving, other) = Loaded::both(config_path, &pool_id, args, &runtime)?;
    let candidate = candidate(&serving, other.as_ref());
    let r = Replay { serving: ReplaySet { plan: &serving.plan, experts: serving.registry.as_ref() }, candidate, from_seq: args.from_seq.unwrap_or(0), to_seq: args.to_seq.unwrap_or(u64::MAX) };
    let candidate_set = r.candidate.as_ref().map(|c| c.plan.describe());
    output(args, &serving.plan, candidate_set.as_deref(), None, |step| Ok(replay::replay(&journal, &pool_id, &r, step)?))
}

/// `--from-prometheus`: fetch the pool's series over the span, then replay them.
pub fn run_prometheus(args: &SimulateArgs, prometheus: &str) -> anyhow::Result<ExitCode> {
    let config_path = args.config.as_deref().context("--from-prometheus needs --config: the host config that names the pool's policies")?;
    let config = Config::load(config_path)?;
    let pool_id = match (&args.pool, config.pools.as_slice()) {
        (Some(p), _) => p.clone(),
        (None, [one]) => one.id.clone(),
        (None, pools) => bail!("{} has {} pools; name one with --pool", config_path.display(), pools.len()),
    };
    let pool = config.pools.iter().find(|p| p.id == pool_id).with_context(|| format!("{} has no pool `{pool_id}`", config_path.display()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let start = super::journal::parse_time(&args.since, now)?;
    let end = args.until.as_deref().map(|u| super::journal::parse_time(u, now)).transpose()?.unwrap_or(now);
    let step_ms = args.step_ms.unwrap_or(pool.interval_ms.max(1000)).max(1) as i64;
    if end <= start {
        bail!("--since is not before --until: nothing to replay");
    }
    if (end - start) / step_ms > MAX_STEPS {
        bail!("{} steps of {step_ms} ms from --since to --until; at most {MAX_STEPS}: raise --step-ms or shorten the span", (end - start) / step_ms);
    }
    let clock = crate::control::clock::WallClock;
    let named = |name: &str| config.sources.get(name).filter(|s| matches!(s, SourceConfig::Prometheus { .. }));
    let main: Arc<dyn MetricSource> = match named(prometheus) {
        Some(s) => crate::service::source(prometheus, s, &clock)?,
        None => Arc::new(PrometheusSource::new(prometheus, Duration::from_secs(30)).map_err(anyhow::Error::msg)?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (serving, other) = Loaded::both(config_path, &pool_id, args, &runtime)?;
    let history = runtime.block_on(async {
        let fetch = |source: Arc<dyn MetricSource>, query: String, from: i64| async move {
            range(source.as_ref(), &query, from, end, step_ms).await.with_context(|| format!("fetching `{query}` from {prometheus}"))
        };
        let mut metrics = Vec::new();
        for m in &pool.metrics {
            let window_ms = (m.window_secs * 1000) as i64;
            let (source, query) = match named(&m.source) {
                Some(s) => (crate::service::source(&m.source, s, &clock)?, m.query.clone().unwrap_or_else(|| m.name.clone())),
                None => (main.clone(), prometheus::exported_metric_query(&pool_id, &m.name)),
            };
            metrics.push(prometheus::MetricHistory { name: m.name.clone(), window_ms, samples: fetch(source, query, start - window_ms).await? });
        }
        let [running, booting, desired] = prometheus::capacity_queries(&pool_id).map(|(_, q)| q);
        let running = fetch(main.clone(), running.clone(), start).await?;
        if running.is_empty() {
            bail!("{prometheus} has no `scalewise_pool_capacity` of pool `{pool_id}` in the span: does it scrape this host's /metrics?");
        }
        let booting = fetch(main.clone(), booting, start).await?;
        let desired = fetch(main.clone(), desired, start).await?;
        anyhow::Ok(prometheus::PoolHistory { start, end, step_ms, metrics, running, booting, desired })
    })?;
    let serving_set = ReplaySet { plan: &serving.plan, experts: serving.registry.as_ref() };
    let candidate = candidate(&serving, other.as_ref());
    let candidate_set = candidate.as_ref().map(|c| c.plan.describe());
    let note = format!("from {prometheus}, a decision every {step_ms} ms: values at Prometheus' resolution, so the serving set agrees with the record or not; it does not reproduce it");
    output(args, &serving.plan, candidate_set.as_deref(), Some(&note), |step| Ok(prometheus::replay(&pool_id, &history, &serving_set, candidate.as_ref(), step)))
}

/// The most steps one `--from-prometheus` replay takes.
pub(super) const MAX_STEPS: i64 = 1_000_000;

/// One series over `[from, end]` at `step` ms, in range queries of at most
/// 10,000 points (Prometheus refuses more than 11,000 a series).
pub(super) async fn range(source: &dyn MetricSource, query: &str, from: i64, end: i64, step: i64) -> anyhow::Result<Vec<Sample>> {
    const POINTS: i64 = 10_000;
    let mut out: Vec<Sample> = Vec::new();
    let mut at = from;
    while at <= end {
        let to = (at + step * (POINTS - 1)).min(end);
        let part = source.query(query, Window { end: to, length_ms: to - at, step_ms: step }).await?;
        let newest = out.last().map_or(i64::MIN, |l| l.at);
        out.extend(part.into_iter().filter(|s| s.at > newest));
        at = to + step;
    }
    Ok(out)
}

/// Write steps.csv and replay.json under --out, print the table (or the
/// JSON), for either kind of replay.
fn output(args: &SimulateArgs, serving: &PoolPlan, candidate_set: Option<&str>, note: Option<&str>, run: impl FnOnce(&mut dyn FnMut(&Step)) -> anyhow::Result<ReplaySummary>) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let csv_path = args.out.join("steps.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path).with_context(|| format!("creating {}", csv_path.display()))?);
    writeln!(csv, "seq,at,mode,running,booting,recorded,replayed,reproduced,candidate,shadow_recorded,differs")?;
    let mut shown: Vec<Step> = Vec::new();
    let mut write_error = None;
    let summary = run(&mut |st: &Step| {
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
    let report = serde_json::json!({ "serving": serving.describe(), "candidate_set": candidate_set, "note": note, "summary": &summary });
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(args.out.join("replay.json"), &json).with_context(|| format!("writing {}", args.out.join("replay.json").display()))?;
    if args.json {
        println!("{json}");
    } else {
        if let Some(n) = note {
            println!("{n}");
        }
        print!("{}", table(&summary, serving, candidate_set, &shown));
        println!("every step: {}", csv_path.display());
    }
    if summary.replayed == 0 {
        eprintln!("nothing was replayed: {}", if summary.skipped > 0 { "every policy decision was skipped (see above)" } else { "no policy decision in the span" });
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The candidate: `--candidate`'s serving set, else the pool's own.
fn candidate<'a>(serving: &'a Loaded, other: Option<&'a Loaded>) -> Option<ReplaySet<'a>> {
    match (other, &serving.plan.candidate) {
        (Some(o), _) => Some(ReplaySet { plan: &o.plan, experts: o.registry.as_ref() }),
        (None, Some(c)) => Some(ReplaySet { plan: c.as_ref(), experts: serving.registry.as_ref() }),
        (None, None) => None,
    }
}

/// A config's set for the pool, with its policies loaded.
struct Loaded {
    plan: PoolPlan,
    registry: Arc<Registry>,
}

impl Loaded {
    /// The serving config's set, and `--candidate`'s if given.
    fn both(config: &Path, pool_id: &str, args: &SimulateArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<(Loaded, Option<Loaded>)> {
        let serving = Loaded::new(config, pool_id, false, args, runtime)?;
        let other = match &args.candidate {
            Some(path) => Some(Loaded::new(path, pool_id, true, args, runtime)?),
            None => None,
        };
        Ok((serving, other))
    }

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
