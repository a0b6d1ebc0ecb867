//! `scalewise tune` end to end: the search never reads the held-back part
//! of the history, every figure it reports for a finalist comes from that
//! part, and the chosen config is one a host loads as it is.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use scalewise_e2e::host::install_builtins;
use scalewise_e2e::prometheus::{prom_query, start_prometheus};
use scalewise_e2e::tools::{chromium, dump_dom};
use scalewise_e2e::{root, scalewise_bin};
use serde_json::Value;

const STEPS: usize = 3000;
const FIT: usize = 1800;
const WARMUP: usize = 600;

/// A daily-ish wave with deterministic noise; `tail` changes what comes
/// after the split.
fn trace(tail: impl Fn(usize, f64) -> f64) -> String {
    let mut x: u64 = 7;
    let mut out = String::new();
    for t in 0..STEPS {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let noise = (x >> 33) as f64 / (1u64 << 31) as f64 - 0.5;
        let base = 200.0 + 150.0 * (t as f64 * std::f64::consts::TAU / 720.0).sin() + 40.0 * noise;
        let load = if t < FIT { base } else { tail(t, base) };
        out.push_str(&format!("{t},{:.3}\n", load.max(0.0)));
    }
    out
}

fn tune(dir: &Path, history: &str, out: &str) -> Value {
    let output = Command::new(scalewise_bin())
        .args(["tune", dir.join("tune.toml").to_str().unwrap(), "--json", "--quiet", "--trace", dir.join(history).to_str().unwrap(), "--out"])
        .arg(dir.join(out))
        .arg("--cache-dir")
        .arg(root().join("target/test-cache"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "tune failed: {text}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn tune_never_scores_a_candidate_on_what_it_fitted_and_writes_a_usable_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install_builtins(&d.join("policies.d"), &["target-tracking"]);
    let hpa = HPA;
    std::fs::write(d.join("hpa.toml"), hpa).unwrap();
    std::fs::write(
        d.join("tune.toml"),
        "[environment]\ncapacity = 10.0\nboot_steps = 2\n\n[history]\npath = \"a.csv\"\n\n[split]\nfit = 0.6\nwarmup = 0.2\n\n[baseline]\nconfig = \"hpa.toml\"\n\n\
         [search]\nruns = 8\nfinalists = 3\nparallel = 2\nseed = 3\n\n\
         [[candidates]]\nname = \"tt\"\nconfig = \"hpa.toml\"\nparams = [\n  { path = \"settings.target-tracking.metrics.0.target\", range = [0.5, 0.95] },\n  { path = \"guardrails.scale_down_stabilization_secs\", range = [0, 600] },\n]\n",
    )
    .unwrap();
    // Two histories, the same up to the split, different after it.
    std::fs::write(d.join("a.csv"), trace(|_, base| base)).unwrap();
    std::fs::write(d.join("b.csv"), trace(|t, base| base * if t % 200 < 100 { 2.5 } else { 0.3 })).unwrap();
    let (a, b) = (tune(d, "a.csv", "out-a"), tune(d, "b.csv", "out-b"));

    assert_eq!((a["steps"].as_u64(), a["fit_steps"].as_u64(), a["warmup_steps"].as_u64()), (Some(STEPS as u64), Some(FIT as u64), Some(WARMUP as u64)));
    let (ca, cb) = (a["candidates"].as_array().unwrap(), b["candidates"].as_array().unwrap());
    assert_eq!(ca.len(), 8, "the budget of candidate runs: {a}");
    // What changed after the split changed no fit-part figure, so the
    // search went exactly the same way: it never read past the split.
    assert_eq!(a["baseline_fit"], b["baseline_fit"]);
    for (x, y) in ca.iter().zip(cb) {
        assert_eq!(x["values"], y["values"], "the same points were searched");
        assert_eq!(x["fit"], y["fit"], "fit scores saw nothing after the split");
        assert!(x["fit"].is_object(), "{x}");
        assert_eq!(x["fit_scored_steps"].as_u64(), Some((FIT - WARMUP) as u64), "scored from the warm-up to the split: {x}");
    }
    assert_eq!(a["finalists"], b["finalists"], "finalists are picked on the fit part");
    // Every finalist's reported figures are from the held-back part only,
    // and they do see it: the two histories' held-back figures differ.
    assert_ne!(a["baseline_held_back"], b["baseline_held_back"]);
    for f in a["finalists"].as_array().unwrap() {
        let i = f.as_u64().unwrap() as usize;
        assert_eq!(ca[i]["held_back_scored_steps"].as_u64(), Some((STEPS - FIT) as u64), "{}", ca[i]);
        assert_ne!(ca[i]["held_back"], cb[i]["held_back"], "held-back figures come from the held-back part");
    }
    let non_finalists = ca.iter().filter(|c| c["held_back"].is_null()).count();
    assert_eq!(non_finalists, 8 - 3, "only finalists are scored on the held-back part");
    let chosen = a["chosen"].as_u64().expect("a chosen set") as usize;
    assert!(a["finalists"].as_array().unwrap().iter().any(|f| f.as_u64() == Some(chosen as u64)));

    // The chosen config loads as it is, from wherever it is saved.
    let written = std::fs::read_to_string(d.join("out-a/chosen.toml")).unwrap();
    let moved = d.join("elsewhere");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::write(moved.join("chosen.toml"), &written).unwrap();
    let config = scalewise::config::Config::load(&moved.join("chosen.toml")).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert!(config.policies.dir.join("target-tracking.wasm").is_file(), "the policy directory is found: {}", config.policies.dir.display());
    let target = ca[chosen]["values"][0][1].as_f64().unwrap();
    assert!(written.contains(&format!("target = {target}")), "the chosen values are in it: {written}");
    let report = std::fs::read_to_string(d.join("out-a/report.html")).unwrap();
    assert!(report.contains("Pareto front") && report.contains("<svg"), "{report}");
    // Drawn by a real browser: the front, demand, the oracle, the baseline
    // and the chosen set each laid out with a size.
    let dom = dump_dom(&chromium(), &format!("file://{}", d.join("out-a/report.html").display()));
    let plotted: u32 = dom.split("data-plotted=\"").nth(1).and_then(|s| s.split('"').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert_eq!(plotted, 5, "every series has a drawn size");
}

const HPA: &str = "[policies]\ndir = \"policies.d\"\n[policies.settings.target-tracking]\ntolerance = 0.1\nmetrics = [{ name = \"utilization\", target = 0.7 }]\n\n\
                   [[pools]]\nid = \"hpa\"\nmin = 1\nmax = 200\nstrategies = [{ policy = \"target-tracking\" }]\nprovider = { kind = \"simulated\" }\nmetrics = [{ name = \"utilization\", source = \"push\" }]\n\
                   [pools.guardrails]\ntolerance = 0.1\nscale_down_stabilization_secs = 300\nscale_up_cooldown_secs = 0\nscale_down_cooldown_secs = 0\n";

/// A `/metrics` endpoint whose `workload_load` gauge rises and falls with
/// the seconds, for a real Prometheus to scrape.
fn serve_load() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let load = 100.0 + 60.0 * (started.elapsed().as_secs_f64() / 4.0).sin();
            let body = format!("# TYPE workload_load gauge\nworkload_load {load:.3}\n");
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

/// The history from a real Prometheus: the range query is written as a
/// trace beside the results and tuned on like a file; a query with no
/// samples says so.
#[test]
fn the_history_can_come_from_a_prometheus_range_query() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install_builtins(&d.join("policies.d"), &["target-tracking"]);
    std::fs::write(d.join("hpa.toml"), HPA).unwrap();
    std::fs::write(
        d.join("tune.toml"),
        "[environment]\nstep_secs = 1\ncapacity = 10.0\nboot_steps = 1\n\n[history]\npath = \"unused.csv\"\n\n[baseline]\nconfig = \"hpa.toml\"\n\n[search]\nruns = 4\nfinalists = 2\n\n\
         [[candidates]]\nname = \"tt\"\nconfig = \"hpa.toml\"\nparams = [{ path = \"settings.target-tracking.metrics.0.target\", range = [0.5, 0.95] }]\n",
    )
    .unwrap();
    let prom = start_prometheus(&[("workload", serve_load())]);
    let started = Instant::now();
    while prom_query(&prom, "count_over_time(workload_load[1m])").is_none_or(|n| n < 25.0) {
        assert!(started.elapsed() < Duration::from_secs(60), "Prometheus did not scrape the load");
        std::thread::sleep(Duration::from_millis(500));
    }
    let url = format!("http://127.0.0.1:{}", prom.port);
    let tune = |query: &str| {
        Command::new(scalewise_bin())
            .args(["tune", d.join("tune.toml").to_str().unwrap(), "--json", "--quiet", "--from-prometheus", &url, "--query", query, "--since", "25s", "--out"])
            .arg(d.join("out"))
            .arg("--cache-dir")
            .arg(root().join("target/test-cache"))
            .output()
            .unwrap()
    };
    let o = tune("workload_load");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    let history = std::fs::read_to_string(d.join("out/history.csv")).unwrap();
    let rows = history.lines().count() - 1;
    assert!(rows >= 20, "{history}");
    assert_eq!(r["steps"].as_u64(), Some(rows as u64), "tuned on what was fetched: {text}");
    assert!(r["chosen"].is_u64(), "{text}");
    let loads: Vec<f64> = history.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(loads.iter().all(|l| (40.0..=160.0).contains(l)) && loads.iter().any(|l| *l > 130.0), "the gauge's own values: {loads:?}");

    let o = tune("no_such_series");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("has no samples"), "{err}");
}

/// The history from a pool's own journal: the samples its decisions saw,
/// rebuilt from the compact records, one row per step, equal to the load
/// the pool was given.
#[test]
fn the_history_can_come_from_a_pools_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install_builtins(&d.join("policies.d"), &["target-tracking", "queue-depth"]);
    std::fs::write(d.join("hpa.toml"), HPA).unwrap();
    std::fs::write(d.join("c.csv"), trace(|_, base| base)).unwrap();
    std::fs::write(
        d.join("q.toml"),
        "[policies]\ndir = \"policies.d\"\n[policies.settings.queue-depth]\ntarget_per_worker = 1.0\n\n[[pools]]\nid = \"web\"\nmin = 1\nmax = 200\nstrategies = [{ policy = \"queue-depth\" }]\nprovider = { kind = \"simulated\" }\nmetrics = [{ name = \"queue_depth\", source = \"push\" }]\n",
    )
    .unwrap();
    std::fs::write(d.join("sim.toml"), "[environment]\ncapacity = 10.0\nboot_steps = 2\n\n[[traces]]\npath = \"c.csv\"\n\n[[sets]]\nname = \"q\"\nconfig = \"q.toml\"\n").unwrap();
    let o = Command::new(scalewise_bin()).args(["simulate", d.join("sim.toml").to_str().unwrap(), "--journal", "--quiet", "--out"]).arg(d.join("sim")).arg("--cache-dir").arg(root().join("target/test-cache")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let journal = d.join("sim/journal/c/q.redb");
    std::fs::write(
        d.join("tune.toml"),
        "[environment]\ncapacity = 1.0\nboot_steps = 2\n\n[history]\npath = \"unused.csv\"\n\n[baseline]\nconfig = \"hpa.toml\"\n\n[search]\nruns = 3\nfinalists = 1\n\n\
         [[candidates]]\nname = \"tt\"\nconfig = \"hpa.toml\"\nparams = [{ path = \"settings.target-tracking.metrics.0.target\", range = [0.5, 0.95] }]\n",
    )
    .unwrap();
    let tune = |metric: &str| {
        Command::new(scalewise_bin())
            .args(["tune", d.join("tune.toml").to_str().unwrap(), "--json", "--quiet", "--metric", metric, "--from-journal"])
            .arg(&journal)
            .arg("--out")
            .arg(d.join("out"))
            .arg("--cache-dir")
            .arg(root().join("target/test-cache"))
            .output()
            .unwrap()
    };
    let o = tune("queue_depth");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(r["trace"], "web", "{text}");
    let history = std::fs::read_to_string(d.join("out/history.csv")).unwrap();
    let rows: Vec<f64> = history.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(rows.len(), STEPS, "one row per step the pool decided");
    let given: Vec<f64> = std::fs::read_to_string(d.join("c.csv")).unwrap().lines().map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap() / 10.0).collect();
    for k in [0, 1, 999, STEPS - 1] {
        assert!((rows[k] - given[k]).abs() < 1e-9, "step {k}: {} read back, {} given", rows[k], given[k]);
    }
    assert_eq!(r["steps"].as_u64(), Some(STEPS as u64));

    let o = tune("latency");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no samples of `latency`") && err.contains("queue_depth"), "{err}");
}

#[test]
fn a_bad_tune_file_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tune.toml"), "[history]\npath = \"x.csv\"\n[split]\nfit = 1.5\n[baseline]\nconfig = \"hpa.toml\"\n[[candidates]]\nname = \"a\"\nconfig = \"hpa.toml\"\nparams = [{ path = \"min\" }]\n").unwrap();
    let output = Command::new(scalewise_bin()).args(["tune", d.join("tune.toml").to_str().unwrap(), "--quiet", "--out"]).arg(d.join("out")).output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("split.fit") && text.contains("params[0]") && text.contains("range"), "{text}");
}
