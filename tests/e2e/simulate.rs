//! `scalewise simulate` end to end: the shipped baselines on the public
//! traces (with the HTML report rendered by headless Chromium), messy
//! traces and broken sets, an endless pipe, and the live control loop
//! deciding exactly what the simulator decides.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use scalewise::config::Config;
use scalewise::control::clock::Clock;
use scalewise::control::pool;
use scalewise::journal::Journal;
use scalewise::policy::{InstanceMode, SandboxOptions};
use scalewise::simulate::fleet::{SimFleet, Spot};
use scalewise::simulate::oracle::Billing;
use scalewise::simulate::run::{self, ORIGIN_MS, Progress, RunOptions};
use scalewise::simulate::source::SimSource;
use scalewise::simulate::spec::{Environment, SetSpec, SimSpec, TraceSpec};
use scalewise_e2e::host::install_builtins;
use scalewise_e2e::tools::{chromium, dump_dom};
use scalewise_e2e::{guest, install, root, scalewise_bin};
use serde_json::Value;

const BUILTINS: &[&str] = &["target-tracking", "step-scaling", "queue-depth", "safest", "budget-cap"];

fn simulate(args: &[&str], dir: &Path) -> (bool, String, Value) {
    let out = dir.join("out");
    let output = Command::new(scalewise_bin())
        .arg("simulate")
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(root().join("target/test-cache"))
        .current_dir(root())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let json = std::fs::read_to_string(out.join("results.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    (output.status.success(), text, json)
}

fn sets(trace: &Value) -> &Vec<Value> {
    trace["sets"].as_array().unwrap()
}

#[test]
fn shipped_baselines_run_on_every_shared_trace_and_the_report_renders() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    install_builtins(&policies, BUILTINS);
    // Every shared trace, whole; the run itself streams them.
    let spec = root().join("examples/simulate/simulate.toml");
    let (ok, text, json) = simulate(&[spec.to_str().unwrap(), "--policy-dir", policies.to_str().unwrap(), "--quiet"], dir.path());
    assert!(ok, "{text}");
    let traces = json["traces"].as_array().expect("results.json has traces");
    let names: Vec<&str> = traces.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["nasa", "wikipedia", "azure"]);
    for t in traces {
        assert_eq!(t["error"], Value::Null);
        let oracle = t["oracle_cost"].as_f64().unwrap();
        assert!(oracle > 0.0);
        let shared: Vec<u64> = traces.iter().map(|t| t["steps"].as_u64().unwrap()).collect();
        assert_eq!(shared, [84_333, 50_714, 1_440], "every row of every trace was replayed");
        assert_eq!(sets(t).len(), 6);
        for s in sets(t) {
            assert_eq!(s["failed"], Value::Null, "{}: {s}", t["name"]);
            assert!(s["decisions"].as_u64().unwrap() > 0 || s["set"] == "static-peak");
            // The ratio is against the oracle at the cheapest price the set
            // could buy (spot, for a set that buys spot).
            let (theta_u, ratio) = (s["metrics"]["theta_u"].as_f64().unwrap(), s["cost_ratio"].as_f64().unwrap());
            if theta_u == 0.0 {
                assert!(ratio >= 1.0 - 1e-9, "{} beat the oracle ({ratio}) without under-provisioning", s["set"]);
            }
        }
        let peak = sets(t).iter().find(|s| s["set"] == "static-peak").unwrap();
        assert_eq!(peak["metrics"]["theta_u"].as_f64(), Some(0.0), "static peak never under-provisions");
    }
    // The table, the CSV and the report.
    assert!(text.contains("trace nasa") && text.contains("oracle") && text.contains("×oracle"), "{text}");
    let csv = std::fs::read_to_string(dir.path().join("out/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 7, "{csv}");
    assert!(csv.starts_with("trace,set,status,theta_u"));
    let dom = dump_dom(&chromium(), &format!("file://{}", dir.path().join("out/report.html").display()));
    let plotted: u32 = dom.split("data-plotted=\"").nth(1).and_then(|s| s.split('"').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert_eq!(plotted, 3 * (2 + 6), "every series of every plot has a drawn size");
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

fn set_config(dir: &Path, name: &str, pool: &str, body: &str) -> PathBuf {
    write(
        &dir.join(format!("{name}.toml")),
        &format!(
            "[policies]\ndir = \"policies.d\"\n[policies.settings.queue-depth]\ntarget_per_worker = 1.0\n\n[[pools]]\nid = \"{pool}\"\nmin = 1\nmax = 100\nprovider = {{ kind = \"simulated\" }}\nmetrics = [{{ name = \"queue_depth\", source = \"push\" }}]\n{body}\n"
        ),
    )
}

#[test]
fn messy_traces_broken_sets_and_trapping_policies_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install_builtins(&d.join("policies.d"), &["queue-depth", "safest", "severity"]);
    install(&guest("hostile"), &d.join("policies.d"), "hostile.wasm");
    // Header, CRLF, a bad row, a negative load, a gap of two steps.
    write(&d.join("messy.csv"), "minute,requests\r\n0,50\r\n1,150\r\n2,oops\r\n3,-5\r\n6,250\r\n7,80\r\n");
    write(&d.join("single.csv"), "0,30\n");
    set_config(d, "queue", "q", "strategies = [{ policy = \"queue-depth\" }]");
    set_config(d, "missing", "m", "strategies = [{ policy = \"no-such-policy\" }]");
    // Settings the policy rejects: its validate-config fails the load.
    let bad = set_config(d, "bad", "b", "strategies = [{ policy = \"queue-depth\" }]");
    let text = std::fs::read_to_string(&bad).unwrap().replace("target_per_worker = 1.0", "target_per_worker = -1.0");
    write(&bad, &text);
    // The hostile guest traps whenever queue_depth is above 1 capacity-unit.
    set_config(d, "trapping", "panic-when-high", "strategies = [{ policy = \"hostile\" }, { policy = \"queue-depth\" }]\nconsensus = \"safest\"");
    // `severity` with steps only at HIGH and CRITICAL declines at calm
    // levels (utilization ≤ 0.8): a decline, not a fault.
    set_config(
        d,
        "calm",
        "severity-when-calm",
        "strategies = [{ policy = \"severity\" }, { policy = \"queue-depth\" }]\nconsensus = \"safest\"\n\
         [pools.settings.severity]\nsignals = [{ metric = \"queue_depth\", thresholds = [0.2, 0.4, 2.0, 3.0] }]\nsteps = { high = 2, critical = 4 }",
    );
    write(
        &d.join("sim.toml"),
        "[environment]\ncapacity = 100.0\nboot_steps = 0\n\n[[traces]]\npath = \"messy.csv\"\n[[traces]]\npath = \"single.csv\"\n[[traces]]\npath = \"absent.csv\"\n\n\
         [[sets]]\nname = \"queue\"\nconfig = \"queue.toml\"\n[[sets]]\nname = \"missing\"\nconfig = \"missing.toml\"\n[[sets]]\nname = \"bad\"\nconfig = \"bad.toml\"\n[[sets]]\nname = \"trapping\"\nconfig = \"trapping.toml\"\n\
         [[sets]]\nname = \"calm\"\nconfig = \"calm.toml\"\n",
    );
    let (ok, text, json) = simulate(&[d.join("sim.toml").to_str().unwrap(), "--quiet"], d);
    assert!(!ok, "an unreadable trace makes the run fail: {text}");
    let traces = json["traces"].as_array().unwrap_or_else(|| panic!("results are still written: {text}"));
    let messy = &traces[0];
    assert_eq!(messy["steps"], 8, "two filled steps, the bad row's step filled too: {messy}");
    let stats = &messy["stats"];
    assert_eq!((stats["skipped_rows"].as_u64(), stats["negative_loads"].as_u64(), stats["filled_steps"].as_u64()), (Some(1), Some(1), Some(3)));
    assert!(text.contains("repaired:"), "{text}");
    let by = |t: &Value, name: &str| sets(t).iter().find(|s| s["set"] == name).cloned().unwrap();
    assert_eq!(by(messy, "queue")["failed"], Value::Null);
    assert!(by(messy, "missing")["failed"].as_str().unwrap().contains("`no-such-policy` is not in"), "{}", by(messy, "missing"));
    let bad = by(messy, "bad")["failed"].as_str().unwrap().to_owned();
    assert!(bad.contains("`queue-depth` failed to load") && bad.contains("target_per_worker"), "{bad}");
    // Loads 50 150 150 0 0 0 250 80 at 100 per instance: above 1 at three steps.
    let trapping = by(messy, "trapping");
    assert_eq!(trapping["failed"], Value::Null);
    assert_eq!((trapping["faulted_steps"].as_u64(), trapping["faults"].as_u64()), (Some(3), Some(3)), "{trapping}");
    assert_eq!(trapping["declined"], 0, "a trap is a fault, not a decline: {trapping}");
    assert_eq!(trapping["decisions"], 8, "the trapping expert abstained; the set kept deciding");
    // Loads in queue-depth units 0.5 1.5 1.5 0 0 0 2.5 0.8: severity has an
    // opinion only at 2.5 (HIGH); the other seven steps it declines.
    let calm = by(messy, "calm");
    assert_eq!(calm["failed"], Value::Null, "{calm}");
    assert_eq!((calm["declined"].as_u64(), calm["declined_steps"].as_u64(), calm["faults"].as_u64()), (Some(7), Some(7), Some(0)), "{calm}");
    assert!(text.contains("decl") && text.contains("fault"), "the table has both columns: {text}");
    assert_eq!(traces[1]["steps"], 1, "a single row is a trace");
    assert!(traces[2]["error"].as_str().unwrap().contains("cannot read trace"), "{}", traces[2]);
    assert!(text.contains("failed sets:"), "{text}");
}

#[test]
fn an_endless_pipe_streams_until_the_step_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install_builtins(&d.join("policies.d"), &["queue-depth"]);
    set_config(d, "queue", "q", "strategies = [{ policy = \"queue-depth\" }]");
    write(&d.join("sim.toml"), "[environment]\ncapacity = 10.0\n[[sets]]\nname = \"queue\"\nconfig = \"queue.toml\"\n");
    let mut child = Command::new(scalewise_bin())
        .args(["simulate", d.join("sim.toml").to_str().unwrap(), "--trace", "-", "--max-steps", "30000", "--quiet", "--journal", "--out"])
        .arg(d.join("out"))
        .arg("--cache-dir")
        .arg(root().join("target/test-cache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // Never ends by itself: only the simulator closing the pipe stops it.
        for i in 0u64.. {
            if writeln!(stdin, "{i},{}", 50 + (i % 120)).is_err() {
                return i;
            }
        }
        unreachable!()
    });
    let status = child.wait().unwrap();
    let fed = feeder.join().unwrap();
    assert!(status.success());
    let json: Value = serde_json::from_str(&std::fs::read_to_string(d.join("out/results.json")).unwrap()).unwrap();
    assert_eq!(json["traces"][0]["steps"], 30_000);
    assert!(fed >= 30_000, "the feeder wrote {fed} rows");
    // --journal: every decision is in the set's journal, as the host keeps them.
    let journal = Journal::open(&d.join("out/journal/stdin/queue.redb")).unwrap();
    let newest = journal.decisions("q", None, 3).unwrap();
    assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [30_000, 29_999, 29_998]);
    assert!(newest[0].votes[0].proposal.is_some(), "{:?}", newest[0]);
}

/// The pool's clock in live mode: tokio's (paused, so auto-advancing), from a base.
struct TokioClock {
    base_ms: i64,
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.base_ms + self.start.elapsed().as_millis() as i64
    }
}

const STEPS: usize = 400;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_live_loop_decides_exactly_what_the_simulator_decides() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install_builtins(&d.join("policies.d"), BUILTINS);
    // The first hours of the Azure trace: bursty, so the guardrails work.
    let azure = std::fs::read_to_string(root().join("data/traces/azure_functions_day_per_minute.csv")).unwrap();
    let loads: Vec<f64> = azure.lines().skip(1).take(STEPS).map(|l| l.split(',').nth(1).unwrap().trim().parse().unwrap()).collect();
    let trace = write(&d.join("azure.csv"), &azure.lines().take(STEPS + 1).collect::<Vec<_>>().join("\n"));
    let config = write(
        &d.join("set.toml"),
        r#"
[policies]
dir = "policies.d"
[policies.settings.target-tracking]
metrics = [{ name = "utilization", target = 0.7 }]
[policies.settings.queue-depth]
target_per_worker = 1.2
[policies.settings.budget-cap]
max_hourly = 2.0

[[pools]]
id = "both"
min = 2
max = 60
strategies = [{ policy = "target-tracking" }, { policy = "queue-depth" }]
consensus = "safest"
cost_rules = ["budget-cap"]
cost = { kind = "m", catalog = [{ name = "m", on_demand_hourly = 0.096 }] }
provider = { kind = "simulated" }
metrics = [{ name = "utilization", source = "push" }, { name = "queue_depth", source = "push", window_secs = 180 }]
[pools.guardrails]
scale_down_stabilization_secs = 300
scale_up_cooldown_secs = 60
scale_up_limits = [{ type = "members", value = 8, period_secs = 120 }]
"#,
    );
    let env = Environment { capacity: 100.0, boot_steps: 2, drain_steps: 1, ..Environment::default() };

    // The simulator.
    let spec = SimSpec {
        environment: env.clone(),
        traces: vec![TraceSpec::at(trace)],
        sets: vec![SetSpec { name: "both".into(), config: Some(config.clone()), pool: None, fixed: None }],
    };
    let options = RunOptions { cache_dir: Some(root().join("target/test-cache")), keep_desired: true, ..Default::default() };
    let results = tokio::task::spawn_blocking(move || run::run(&spec, &options, &Arc::new(Progress::default())).unwrap()).await.unwrap();
    let simulated = &results[0].sets[0];
    assert_eq!(simulated.failed, None);
    assert_eq!(simulated.desired.len(), STEPS);
    assert!(simulated.actions > 20, "a run that scales: {} actions", simulated.actions);

    // The live loop: its own task and timer, tokio's paused clock racing
    // ahead, fresh instances, the same fleet and source. Its journal does
    // not wait for commits: with time paused, a wait would let the clock
    // jump in the middle of a tick.
    let cfg = Config::load(&config).unwrap();
    let p = &cfg.pools[0];
    let engine = scalewise_e2e::engine(SandboxOptions { instance_mode: InstanceMode::Fresh, ..SandboxOptions::default() });
    let registry = run::registry_for(&cfg, p, &d.join("policies.d"), &engine).unwrap();
    let step = Duration::from_secs(env.step_secs);
    // Live ticks fall on the pool's phase; start the fleet's steps there.
    let origin = ORIGIN_MS + scalewise::control::clock::phase_of(&p.id, step);
    let clock = Arc::new(TokioClock { base_ms: origin - 1, start: tokio::time::Instant::now() });
    let billing = Billing { step_secs: env.step_secs, granularity_secs: env.billing_secs, boot_steps: env.boot_steps, drain_steps: env.drain_steps };
    let initial = ((loads[0] / env.capacity).ceil() as u32).clamp(p.min, p.max);
    let fleet = Arc::new(SimFleet::new(clock.clone(), origin, billing, Spot::default(), initial));
    let source = Arc::new(SimSource::new(fleet.clone(), origin, step.as_millis() as i64, env.capacity, env.target_utilization));
    loads.iter().for_each(|&l| source.append(l));
    let settings = run::pool_settings(p, step, &fleet, &source);
    let journal = Journal::open_detached(&d.join("live.redb")).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (handle, task) = pool::start(settings, registry, Some(journal.clone()), clock.clone(), stopped).await.unwrap();
    while handle.snapshot().decisions < STEPS as u64 {
        tokio::time::sleep(step).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();

    let mut live = handle.recent(None, STEPS + 50);
    live.reverse();
    let live: Vec<(i64, u32)> = live.iter().map(|r| ((r.at - origin) / step.as_millis() as i64, r.desired)).collect();
    for (t, want) in simulated.desired.iter().enumerate() {
        assert_eq!(live[t], (t as i64, *want), "step {t}: live {:?}, simulated {want}", live[t]);
    }
}

/// Of the steps at which the load was about to rise (demand `ahead` steps
/// later, when a launch made now would serve, is higher than now), the
/// share at which the capacity asked for already covered that later demand.
fn ahead_of_rises(demand: &[f64], desired: &[f64], ahead: usize) -> f64 {
    let rising: Vec<usize> = (0..demand.len() - ahead).filter(|&t| demand[t + ahead] > demand[t]).collect();
    rising.iter().filter(|&&t| desired[t] >= demand[t + ahead]).count() as f64 / rising.len() as f64
}

/// Issue 5's first acceptance line, in its scenario (peak = 100 instances,
/// boot 5 steps, 20 % warm-up) on twelve days of the NASA trace's daily
/// cycle: predictive + reactive under-provisions less than the HPA-like
/// baseline, moves before the load does, and comes back down after peaks.
#[test]
fn the_hybrid_scales_before_the_daily_rise_and_back_down_after_it() {
    const STEPS: u64 = 12 * 1440;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.d");
    install_builtins(&policies, &["target-tracking", "predictive", "hybrid"]);
    let mut spec = SimSpec::load(&root().join("examples/simulate/scenario.toml")).unwrap();
    spec.traces.retain(|t| t.name() == "nasa");
    spec.sets.retain(|s| s.name == "hpa" || s.name == "hybrid");
    let options = RunOptions { policy_dir: Some(policies), cache_dir: Some(root().join("target/test-cache")), keep_desired: true, max_steps: Some(STEPS), ..Default::default() };
    let results = run::run(&spec, &options, &Arc::new(Progress::default())).unwrap();
    let trace = &results[0];
    assert_eq!((trace.steps, trace.warmup_steps), (STEPS, STEPS / 5));
    let [hpa, hybrid] = [&trace.sets[0], &trace.sets[1]];
    assert_eq!((hpa.failed.as_deref(), hybrid.failed.as_deref()), (None, None));
    let (u_hpa, u_hybrid) = (hpa.metrics.theta_u, hybrid.metrics.theta_u);
    assert!(u_hybrid < u_hpa, "θ_U: hybrid {u_hybrid:.2}, HPA-like {u_hpa:.2}");

    // The demand each step, as the simulator scores it.
    let file = std::fs::File::open(&trace.path).unwrap();
    let reader = scalewise::simulate::trace::TraceReader::new(std::io::BufReader::new(file)).limit(Some(STEPS));
    let demand: Vec<f64> = reader.map(|l| f64::from(scalewise::simulate::elasticity::demand(l, trace.capacity))).collect();
    let scored = trace.warmup_steps as usize;
    let desired = |s: &run::SetResult| s.desired[scored..].iter().map(|&d| f64::from(d)).collect::<Vec<f64>>();
    // A launch decided at t serves from t + 1 + boot.
    let ahead = 1 + trace.boot_steps as usize;
    let (early_hpa, early_hybrid) = (ahead_of_rises(&demand[scored..], &desired(hpa), ahead), ahead_of_rises(&demand[scored..], &desired(hybrid), ahead));
    eprintln!("θ_U hybrid {u_hybrid:.2} vs HPA-like {u_hpa:.2}; before a rise, capacity asked for covered the load {ahead} steps on: hybrid {:.1}%, HPA-like {:.1}%", early_hybrid * 100.0, early_hpa * 100.0);
    assert!(early_hybrid > early_hpa + 0.03, "the hybrid scales up before the load rises: {early_hybrid:.3} vs {early_hpa:.3}");

    // Back down after each day's peak: in each scored day's quietest hour
    // of load it asks for less than half of what it asked in its busiest.
    let hybrid_desired = desired(hybrid);
    let hourly = |x: &[f64]| x.chunks(60).map(|h| h.iter().sum::<f64>() / h.len() as f64).collect::<Vec<f64>>();
    for (dem, want) in demand[scored..].chunks(1440).zip(hybrid_desired.chunks(1440)).filter(|(d, _)| d.len() == 1440) {
        let (dem, want) = (hourly(dem), hourly(want));
        let quiet = (0..24).min_by(|a, b| dem[*a].total_cmp(&dem[*b])).unwrap();
        let busiest = want.iter().cloned().fold(0.0, f64::max);
        assert!(want[quiet] < 0.5 * busiest, "asked for {:.1} in the day's quietest hour, {busiest:.1} in its busiest", want[quiet]);
    }
}

/// Issue 5's fifth acceptance line: a pool on a preset, with overrides,
/// decides step for step what the spelled-out pool it stands for decides.
/// Three days of the NASA trace, with the predictive model learning: any
/// setting lost or misplaced in the expansion shows as a different step.
#[test]
fn a_preset_decides_exactly_what_its_spelled_out_config_decides() {
    const STEPS: u64 = 3 * 1440;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policies = d.join("policies.d");
    install_builtins(&policies, &["target-tracking", "predictive", "hybrid"]);
    let metrics = r#"metrics = [{ name = "utilization", source = "push" }, { name = "queue_depth", source = "push", window_secs = 120 }]"#;
    let preset = write(
        &d.join("preset.toml"),
        &format!(
            r#"
[policies]
dir = "policies.d"
[policies.settings.predictive]
error_weight = 0.1

[[pools]]
id = "p"
min = 2
max = 1000
preset = "cost-optimized"
provider = {{ kind = "simulated" }}
{metrics}
guardrails = {{ scale_down_stabilization_secs = 180 }}
settings.predictive = {{ horizon_secs = 420 }}
"#
        ),
    );
    let spelled_out = write(
        &d.join("spelled-out.toml"),
        &format!(
            r#"
[policies]
dir = "policies.d"
[policies.settings.predictive]
metric = "queue_depth"
per_instance = 1.0
horizon_secs = 420
horizon_steps = 2
floor_at_current = false
error_headroom = 0.25
error_weight = 0.1
[policies.settings.target-tracking]
tolerance = 0.1
metrics = [{{ name = "utilization", target = 0.9 }}]
[policies.settings.hybrid]
predictive = ["predictive"]

[[pools]]
id = "p"
min = 2
max = 1000
strategies = [{{ policy = "predictive" }}, {{ policy = "target-tracking" }}]
consensus = "hybrid"
provider = {{ kind = "simulated" }}
{metrics}
[pools.guardrails]
tolerance = 0.0
scale_up_cooldown_secs = 0
scale_down_cooldown_secs = 0
scale_down_stabilization_secs = 180
"#
        ),
    );
    let mut spec = SimSpec::load(&root().join("examples/simulate/scenario.toml")).unwrap();
    spec.traces.retain(|t| t.name() == "nasa");
    spec.sets = vec![
        SetSpec { name: "preset".into(), config: Some(preset), pool: None, fixed: None },
        SetSpec { name: "spelled-out".into(), config: Some(spelled_out), pool: None, fixed: None },
    ];
    let options = RunOptions { policy_dir: Some(policies), cache_dir: Some(root().join("target/test-cache")), keep_desired: true, max_steps: Some(STEPS), ..Default::default() };
    let results = run::run(&spec, &options, &Arc::new(Progress::default())).unwrap();
    let [preset, spelled] = [&results[0].sets[0], &results[0].sets[1]];
    assert_eq!((preset.failed.as_deref(), spelled.failed.as_deref()), (None, None));
    assert!(preset.actions > 100, "a run that scales: {} actions", preset.actions);
    assert_eq!(preset.desired.len(), STEPS as usize);
    for (t, (a, b)) in preset.desired.iter().zip(&spelled.desired).enumerate() {
        assert_eq!(a, b, "step {t}: the preset pool asked for {a}, the spelled-out one for {b}");
    }
    assert_eq!(preset.metrics.theta_u, spelled.metrics.theta_u);
}

/// A pool config on the simulated fleet with target-tracking, and `extra`
/// (cost rules and their settings) laid in.
fn tracking_config(dir: &Path, name: &str, provider: &str, extra: &str) -> PathBuf {
    write(
        &dir.join(format!("{name}.toml")),
        &format!(
            r#"
[policies]
dir = "policies.d"
[policies.settings.target-tracking]
tolerance = 0.1
metrics = [{{ name = "utilization", target = 0.7 }}]
[policies.settings.spot-mix]
spot_percent = 80
max_interruption_rate = 1.0

[[pools]]
id = "{name}"
min = 1
max = 1000
strategies = [{{ policy = "target-tracking" }}]
provider = {provider}
metrics = [{{ name = "utilization", source = "push" }}, {{ name = "spot_interruption_rate", source = "push", window_secs = 600 }}]
cost = {{ kind = "m", catalog = [{{ name = "m", on_demand_hourly = 0.096, spot_hourly = 0.03 }}] }}
guardrails = {{ tolerance = 0.1, scale_down_stabilization_secs = 300 }}
{extra}
"#
        ),
    )
}

#[test]
fn spot_mix_buys_spot_in_calm_weather_and_on_demand_through_a_storm() {
    const STEPS: u64 = 3 * 1440;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policies = d.join("policies.d");
    install_builtins(&policies, &["target-tracking", "spot-mix"]);
    let mix = tracking_config(d, "mix", r#"{ kind = "simulated" }"#, r#"cost_rules = ["spot-mix"]"#);
    let blind = tracking_config(d, "blind", r#"{ kind = "simulated", spot_share = 0.8 }"#, "");
    let mut spec = SimSpec::load(&root().join("examples/simulate/scenario.toml")).unwrap();
    spec.traces.retain(|t| t.name() == "nasa");
    spec.environment.warmup = 0.0;
    spec.environment.spot_hourly = Some(0.03);
    spec.environment.spot_interruptions_per_hour = 0.02;
    // A storm through the second day: a spot instance lasts 20 minutes.
    spec.environment.spot_storms = vec![scalewise::simulate::spec::Storm { from: 1440, to: 2880, interruptions_per_hour: 3.0 }];
    spec.sets = vec![
        SetSpec { name: "mix".into(), config: Some(mix), pool: None, fixed: None },
        SetSpec { name: "blind".into(), config: Some(blind), pool: None, fixed: None },
    ];
    let options = RunOptions { policy_dir: Some(policies), cache_dir: Some(root().join("target/test-cache")), max_steps: Some(STEPS), ..Default::default() };
    let results = run::run(&spec, &options, &Arc::new(Progress::default())).unwrap();
    let [mix, blind] = [&results[0].sets[0], &results[0].sets[1]];
    assert_eq!((mix.failed.as_deref(), blind.failed.as_deref()), (None, None));
    // Both buy spot; the mix stops launching it while the storm rages.
    assert!(mix.bill.spot_units > mix.bill.on_demand_units, "calm days are mostly spot: {:?}", mix.bill);
    assert!(
        mix.bill.interruptions * 3 < blind.bill.interruptions,
        "the mix lost {} instances to interruptions, the fixed share {}",
        mix.bill.interruptions,
        blind.bill.interruptions
    );
    assert!(mix.metrics.theta_u < blind.metrics.theta_u, "fewer interruptions, less under-provisioning: {} vs {}", mix.metrics.theta_u, blind.metrics.theta_u);
}

#[test]
fn a_quota_limits_every_scale_up_to_what_the_account_holds() {
    const STEPS: u64 = 1440;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policies = d.join("policies.d");
    install_builtins(&policies, &["target-tracking"]);
    let config = tracking_config(d, "quota", r#"{ kind = "simulated" }"#, "");
    let mut spec = SimSpec::load(&root().join("examples/simulate/scenario.toml")).unwrap();
    spec.traces.retain(|t| t.name() == "nasa");
    spec.sets = vec![SetSpec { name: "quota".into(), config: Some(config), pool: None, fixed: None }];
    let options = RunOptions { policy_dir: Some(policies), cache_dir: Some(root().join("target/test-cache")), keep_desired: true, max_steps: Some(STEPS), ..Default::default() };
    let free = run::run(&spec, &options, &Arc::new(Progress::default())).unwrap();
    let peak = *free[0].sets[0].desired.iter().max().unwrap();
    assert!(peak > 30, "without a quota the day needs {peak}");
    spec.environment.quota = Some(30);
    spec.environment.initial = Some(5);
    let limited = run::run(&spec, &options, &Arc::new(Progress::default())).unwrap();
    let set = &limited[0].sets[0];
    assert_eq!(set.failed, None);
    let most = *set.desired.iter().max().unwrap();
    assert!((25..=30).contains(&most), "never asks for more than the quota holds: {most}");
}
