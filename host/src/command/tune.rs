//! `scalewise tune`: search, print the front and the choice, write the
//! chosen config and the reports.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;

use crate::cli::TuneArgs;
use crate::simulate::spec::TraceSpec;
use crate::tune::spec::TuneSpec;
use crate::tune::{self, TuneOptions, TuneProgress, report};

pub fn run(args: TuneArgs) -> anyhow::Result<ExitCode> {
    let mut spec = TuneSpec::load(&args.spec).map_err(anyhow::Error::msg)?;
    if let Some(trace) = &args.trace {
        spec.history = TraceSpec { path: trace.clone(), name: None, ..spec.history };
    }
    if let Some(runs) = args.runs {
        anyhow::ensure!(runs > 0, "--runs: at least 1");
        spec.search.runs = runs;
    }
    spec.search.seconds = args.seconds.or(spec.search.seconds);
    spec.search.parallel = args.parallel.or(spec.search.parallel);
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    if let Some(url) = &args.from_prometheus {
        let step_secs = spec.history.step_secs.unwrap_or(spec.environment.step_secs).max(1);
        let path = args.out.join("history.csv");
        let rows = history_from_prometheus(url, args.query.as_deref().expect("clap requires it"), &args.since, args.until.as_deref(), step_secs, &path)?;
        eprintln!("history: {rows} steps of {step_secs} s from {url}, written to {}", path.display());
        spec.history = TraceSpec { path, name: Some("prometheus".into()), ..spec.history };
    }
    if let Some(journal) = &args.from_journal {
        let step_secs = spec.history.step_secs.unwrap_or(spec.environment.step_secs).max(1);
        let path = args.out.join("history.csv");
        let (pool, rows, skipped) = history_from_journal(journal, args.pool.as_deref(), args.metric.as_deref().expect("clap requires it"), step_secs, &path)?;
        eprintln!("history: {rows} steps of {step_secs} s of pool `{pool}` from {}{}, written to {}", journal.display(), if skipped > 0 { format!(" ({skipped} decisions without readable inputs skipped)") } else { String::new() }, path.display());
        spec.history = TraceSpec { path, name: Some(pool), ..spec.history };
    }
    let options = TuneOptions { policy_dir: args.policy_dir.clone(), cache_dir: Some(args.cache_dir.clone()) };
    let progress = Arc::new(TuneProgress::default());
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let progress = progress.clone();
        super::simulate::spawn_bar(move || {
            let (done, planned) = (progress.done.load(Ordering::Relaxed), progress.planned.load(Ordering::Relaxed));
            (planned > 0).then(|| (done as f64 / planned as f64, format!("{done}/{planned} runs")))
        })
    });
    let result = tune::tune(&spec, &options, &progress);
    if let Some((stop, handle)) = bar {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
    }
    let result = result?;
    let write = |name: &str, text: &str| std::fs::write(args.out.join(name), text).with_context(|| format!("writing {}", args.out.join(name).display()));
    write("tune.json", &report::json(&result))?;
    write("report.html", &report::html(&result))?;
    if let Some(config) = &result.chosen_config {
        write("chosen.toml", config)?;
    }
    if args.json {
        println!("{}", report::json(&result));
    } else {
        print!("{}", report::table(&result));
        match &result.chosen_config {
            Some(_) => println!("chosen config: {}; report: {}", args.out.join("chosen.toml").display(), args.out.join("report.html").display()),
            None => println!("report: {}", args.out.join("report.html").display()),
        }
    }
    Ok(if result.chosen.is_some() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Fetch `query` over the span at the history's step and write it as a
/// trace (`step,load`, the step counted from the span's start, so a gap in
/// Prometheus's answer is a gap the trace reader fills and reports).
fn history_from_prometheus(url: &str, query: &str, since: &str, until: Option<&str>, step_secs: u64, path: &std::path::Path) -> anyhow::Result<u64> {
    use scalewise_providers::sources::prometheus::PrometheusSource;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let start = super::journal::parse_time(since, now)?;
    let end = until.map(|u| super::journal::parse_time(u, now)).transpose()?.unwrap_or(now);
    let step_ms = step_secs as i64 * 1000;
    anyhow::ensure!(end > start, "--since is not before --until: no history");
    anyhow::ensure!((end - start) / step_ms <= super::replay::MAX_STEPS, "{} steps of {step_secs} s from --since to --until; at most {}", (end - start) / step_ms, super::replay::MAX_STEPS);
    let source = PrometheusSource::new(url, std::time::Duration::from_secs(30)).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let samples = runtime.block_on(super::replay::range(&source, query, start, end, step_ms)).with_context(|| format!("fetching `{query}` from {url}"))?;
    anyhow::ensure!(!samples.is_empty(), "`{query}` has no samples at {url} from {since} to {}: check the query in Prometheus's own UI", until.unwrap_or("now"));
    let mut out = String::from("step,load\n");
    for s in &samples {
        out.push_str(&format!("{},{}\n", (s.at - start) / step_ms, s.value));
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(samples.len() as u64)
}

/// Read the samples of `metric` that `pool`'s decisions saw from its
/// journal (each decision's windows, rebuilt from the compact records),
/// average them per step of `step_secs` and write them as a trace. Returns
/// the pool, the steps written and the decisions whose inputs could not be
/// read (written before inputs were kept, or changes of a decision that
/// retention dropped).
fn history_from_journal(path: &std::path::Path, pool: Option<&str>, metric: &str, step_secs: u64, out: &std::path::Path) -> anyhow::Result<(String, u64, u64)> {
    use std::collections::BTreeMap;
    use std::ops::ControlFlow;

    use crate::decide::inputs::InputReader;
    use crate::journal::{Journal, JournalError};

    let journal = match Journal::open_to_read(path) {
        Ok(j) => j,
        Err(JournalError::Open { detail, .. }) if detail.contains("another process") => {
            anyhow::bail!("a running host holds {}; stop it (or its replica) first: a journal file opens in one process at a time", path.display())
        }
        Err(e) => return Err(e.into()),
    };
    let pools = journal.pools();
    let pool = match (pool, pools.as_slice()) {
        (Some(p), _) if pools.iter().any(|q| q == p) => p.to_owned(),
        (Some(p), _) => anyhow::bail!("{} holds no decisions of pool `{p}`; it has: {}", path.display(), pools.join(", ")),
        (None, [one]) => one.clone(),
        (None, []) => anyhow::bail!("{} holds no decisions", path.display()),
        (None, many) => anyhow::bail!("{} holds {} pools ({}); name one with --pool", path.display(), many.len(), many.join(", ")),
    };
    let (mut reader, mut last_seq, mut skipped) = (InputReader::default(), None, 0u64);
    let mut samples: BTreeMap<i64, f64> = BTreeMap::new();
    let mut seen_metrics: Vec<String> = Vec::new();
    journal.history(&pool, |w| {
        let Some(record) = w.record else { return ControlFlow::Continue(()) };
        // A decision is written twice (its intent, then its outcome).
        if last_seq == Some(record.seq) {
            return ControlFlow::Continue(());
        }
        last_seq = Some(record.seq);
        let Some(inputs) = &record.inputs else {
            skipped += 1;
            return ControlFlow::Continue(());
        };
        match reader.windows(record.seq, inputs) {
            Ok(windows) => {
                for win in &windows {
                    if !seen_metrics.contains(&win.name) {
                        seen_metrics.push(win.name.clone());
                    }
                    if win.name == metric {
                        samples.extend(win.times().iter().copied().zip(win.values().iter().copied()).filter(|(_, v)| v.is_finite()));
                    }
                }
            }
            Err(_) => skipped += 1,
        }
        ControlFlow::Continue(())
    })?;
    let (Some((&first, _)), false) = (samples.first_key_value(), samples.is_empty()) else {
        anyhow::bail!("the decisions of pool `{pool}` in {} hold no samples of `{metric}`; they have: {}", path.display(), if seen_metrics.is_empty() { "no recorded inputs".into() } else { seen_metrics.join(", ") });
    };
    let step_ms = step_secs as i64 * 1000;
    let mut steps: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    for (at, v) in samples {
        let e = steps.entry((at - first).div_euclid(step_ms)).or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    let mut text = String::from("step,load\n");
    for (k, (sum, n)) in &steps {
        text.push_str(&format!("{k},{}\n", sum / f64::from(*n)));
    }
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    Ok((pool, steps.len() as u64, skipped))
}
