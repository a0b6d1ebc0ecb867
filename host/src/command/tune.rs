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
