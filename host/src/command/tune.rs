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
