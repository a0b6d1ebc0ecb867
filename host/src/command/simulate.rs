//! `scalewise simulate`: run the policy sets, print the table, write the reports.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::SimulateArgs;
use crate::simulate::report;
use crate::simulate::run::{self, Progress, RunOptions};
use crate::simulate::spec::{SimSpec, TraceSpec};

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    if let Some(journal) = args.from_journal.clone() {
        return super::replay::run(&args, &journal);
    }
    if let Some(prometheus) = args.from_prometheus.clone() {
        return super::replay::run_prometheus(&args, &prometheus);
    }
    let spec_path = args.spec.clone().context("give a simulation file, or --from-journal JOURNAL")?;
    let mut spec = SimSpec::load(&spec_path).map_err(anyhow::Error::msg)?;
    if !args.trace.is_empty() {
        spec.traces = args.trace.iter().cloned().map(TraceSpec::at).collect();
    }
    if spec.traces.is_empty() {
        anyhow::bail!("no traces: list [[traces]] in {} or pass --trace FILE", spec_path.display());
    }
    if let Some(w) = args.warmup {
        anyhow::ensure!((0.0..1.0).contains(&w), "--warmup: a share in [0, 1), got {w}");
        spec.environment.warmup = w;
        for t in &mut spec.traces {
            t.warmup = None;
        }
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let options = RunOptions {
        policy_dir: args.policy_dir.clone(),
        cache_dir: Some(args.cache_dir.clone()),
        max_steps: args.max_steps,
        journal_dir: args.journal.then(|| args.out.join("journal")),
        keep_desired: false,
        score_from: None,
    };
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let progress = progress.clone();
        spawn_bar(move || {
            let (read, total) = (progress.bytes_read.load(Ordering::Relaxed), progress.bytes_total.load(Ordering::Relaxed));
            (total > 0).then(|| {
                let f = (read as f64 / total as f64).min(1.0);
                (f, format!("{:>3.0}%", f * 100.0))
            })
        })
    });
    let results = run::run(&spec, &options, &progress);
    if let Some((stop, handle)) = bar {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
    }
    let results = results?;
    let elapsed = started.elapsed();
    let write = |name: &str, text: String| std::fs::write(args.out.join(name), text).with_context(|| format!("writing {}", args.out.join(name).display()));
    write("results.json", report::json(&spec.environment, &results))?;
    write("results.csv", report::csv(&results))?;
    write("report.html", report::html(&spec.environment, &results))?;
    if args.json {
        println!("{}", report::json(&spec.environment, &results));
    } else {
        print!("{}", report::table(&results));
        let steps: u64 = results.iter().map(|t| t.steps * t.sets.len() as u64).sum();
        println!("{steps} set-steps in {:.2} s; report: {}", elapsed.as_secs_f64(), args.out.join("report.html").display());
    }
    let failed: Vec<String> = results.iter().flat_map(|t| t.sets.iter().filter(|s| s.failed.is_some()).map(move |s| format!("{}/{}", t.name, s.set))).collect();
    let trace_errors = results.iter().filter(|t| t.error.is_some()).count();
    if !failed.is_empty() {
        eprintln!("failed sets: {}", failed.join(", "));
    }
    Ok(if trace_errors > 0 || results.iter().all(|t| t.sets.iter().all(|s| s.failed.is_some())) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A progress bar on stderr until the flag is set: `fraction` gives the
/// share done and a note, or `None` while nothing is known yet.
pub(super) fn spawn_bar(fraction: impl Fn() -> Option<(f64, String)> + Send + 'static) -> (Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut err = std::io::stderr();
        while !flag.load(Ordering::Relaxed) {
            if let Some((f, note)) = fraction() {
                let filled = (f.clamp(0.0, 1.0) * 40.0) as usize;
                let _ = write!(err, "\r[{}{}] {note}", "#".repeat(filled), " ".repeat(40 - filled));
                let _ = err.flush();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = write!(err, "\r{}\r", " ".repeat(60));
    });
    (stop, handle)
}
