//! `scalewise tune`: fit a policy set's settings to a workload's own
//! history, and prove the fit on history it did not see.
//!
//! Hand-tuned presets do not carry over from one workload to the next: on
//! the shared traces, settings shaped on one trace paid for less
//! over-provisioning with more under-provisioning on another. So the
//! settings are searched per workload, with the simulator (the host's own
//! control loop under a virtual clock: what tuning measures is what
//! production does), and judged the way a forecaster is: on a **time
//! split**. The search runs every candidate on the first part of the
//! history (`split.fit`, 60 % by default) and never reads past it. The
//! finalists (the best on that part) and the baseline are then run on the
//! whole history but scored only on the later part, which no search
//! decision saw; the chosen set is the best of them there, and every figure
//! the report prints for it comes from there.
//!
//! The objective is the operator's: minimize θ_O or cost, with θ_U,
//! unserved load and τ_U bounded by numbers or by the baseline's own figure
//! on the same part (`"baseline"`: no worse service than the HPA-like rule).
//!
//! `spec` reads the tune file, `candidate` turns a point of a family's
//! ranges into a config, `search` samples and ranks, `report` prints.

pub mod candidate;
pub mod report;
pub mod search;
pub mod spec;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use toml::Value;

use crate::config::Config;
use crate::simulate::prepare::{Prepared, prepare_config};
use crate::simulate::run::{self, Progress, RunOptions, SetResult, TraceResult};
use crate::simulate::spec::{SimSpec, TraceSpec};
use candidate::Base;
use search::{Bounds, Rng, Scores};
use spec::{Limit, Minimize, TuneSpec};

#[derive(Debug, Clone, Default)]
pub struct TuneOptions {
    /// Replaces every config's policy directory.
    pub policy_dir: Option<std::path::PathBuf>,
    pub cache_dir: Option<std::path::PathBuf>,
}

/// Runs done and planned, for the progress bar.
#[derive(Debug, Default)]
pub struct TuneProgress {
    pub done: AtomicU64,
    pub planned: AtomicU64,
}

/// One candidate and its scores.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub id: usize,
    pub family: String,
    /// Each param's path and value.
    pub values: Vec<(String, Value)>,
    /// On the fit part (scored from the warm-up to the split).
    pub fit: Option<Scores>,
    /// On the held-back part; finalists only.
    pub held_back: Option<Scores>,
    /// Steps each part scored (the fit part's never reach the split).
    pub fit_scored_steps: u64,
    pub held_back_scored_steps: u64,
    pub failed: Option<String>,
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Serialize)]
pub struct TuneResult {
    pub trace: String,
    pub steps: u64,
    pub capacity: f64,
    pub warmup_steps: u64,
    /// The first step of the held-back part; the search never read it.
    pub fit_steps: u64,
    pub minimize: Minimize,
    pub baseline_fit: Scores,
    pub baseline_held_back: Scores,
    pub bounds_fit: Bounds,
    pub bounds_held_back: Bounds,
    pub candidates: Vec<Candidate>,
    /// Candidates on the fit part's Pareto front (objective against θ_U).
    pub front: Vec<usize>,
    pub finalists: Vec<usize>,
    pub chosen: Option<usize>,
    /// Where the chosen set misses a bound or the goal, and why.
    pub notes: Vec<String>,
    pub runs: u64,
    pub wall_s: f64,
    /// The chosen set's config, as written to `chosen.toml`.
    #[serde(skip)]
    pub chosen_config: Option<String>,
    /// The held-back run of the baseline and the chosen set, for the plot.
    #[serde(skip)]
    pub held_back_trace: Option<TraceResult>,
}

impl TuneResult {
    pub fn objective(&self, s: &Scores) -> f64 {
        objective(self.minimize, s)
    }
}

fn objective(m: Minimize, s: &Scores) -> f64 {
    match m {
        Minimize::ThetaO => s.theta_o,
        Minimize::Cost => s.cost,
    }
}

fn scores(r: &SetResult) -> Scores {
    let m = &r.metrics;
    Scores { theta_u: m.theta_u, theta_o: m.theta_o, tau_u: m.tau_u, unserved: m.unserved * 100.0, cost: r.cost, cost_ratio: r.cost_ratio.unwrap_or(f64::NAN) }
}

fn bounds(spec: &TuneSpec, baseline: &Scores) -> Bounds {
    let resolve = |limit: Option<Limit>, own: f64| limit.map(|l| if let Limit::At(x) = l { x } else { own });
    Bounds { theta_u: resolve(spec.objective.theta_u, baseline.theta_u), unserved: resolve(spec.objective.unserved, baseline.unserved), tau_u: resolve(spec.objective.tau_u, baseline.tau_u) }
}

/// The values a candidate's family has in its own config, param by param.
fn bases_own(bases: &[Base], paths: &[Vec<&str>], spec: &TuneSpec, c: &Candidate) -> Vec<Option<Value>> {
    let family = spec.candidates.iter().position(|f| f.name == c.family).expect("a known family");
    match bases[family].own_values(&paths[family]) {
        Some(v) => v.into_iter().map(Some).collect(),
        None => vec![None; paths[family].len()],
    }
}

/// The tuner's view of the history: one trace, its capacity fixed from the
/// whole of it (the scenario, not a fitted figure), and the two parts.
struct Split {
    sim: SimSpec,
    steps: u64,
    capacity: f64,
    warmup_steps: u64,
    fit_steps: u64,
}

fn split(spec: &TuneSpec) -> anyhow::Result<Split> {
    let h = &spec.history;
    let (steps, peak) = run::scan(&h.path, None).map_err(|e| anyhow::anyhow!("history {}: {e}", h.path.display()))?;
    let env = &spec.environment;
    let capacity = match h.peak_instances.or(env.peak_instances) {
        Some(n) => run::capacity_for(peak, n),
        None => h.capacity.unwrap_or(env.capacity),
    };
    let fit_steps = (steps as f64 * spec.split.fit).floor() as u64;
    let warmup_steps = (steps as f64 * spec.split.warmup).floor() as u64;
    if fit_steps <= warmup_steps || fit_steps >= steps {
        anyhow::bail!("history {}: {steps} steps leave nothing to fit or nothing held back at split.fit {} and split.warmup {}", h.path.display(), spec.split.fit, spec.split.warmup);
    }
    let mut environment = env.clone();
    environment.peak_instances = None;
    environment.warmup = 0.0;
    let trace = TraceSpec { capacity: Some(capacity), peak_instances: None, warmup: None, ..h.clone() };
    Ok(Split { sim: SimSpec { environment, traces: vec![trace], sets: Vec::new() }, steps, capacity, warmup_steps, fit_steps })
}

/// Run `sets` on one part: the fit part (`held_back` false: the trace is
/// cut at the split) or the whole trace scored from the split.
fn run_part(split: &Split, sets: Vec<(String, Prepared)>, options: &RunOptions, held_back: bool) -> anyhow::Result<TraceResult> {
    let options = if held_back {
        RunOptions { max_steps: None, score_from: Some(split.fit_steps), keep_desired: false, ..options.clone() }
    } else {
        RunOptions { max_steps: Some(split.fit_steps), score_from: Some(split.warmup_steps), ..options.clone() }
    };
    let mut results = run::run_prepared(&split.sim, sets, &options, &Arc::new(Progress::default()))?;
    let t = results.pop().expect("one trace");
    if let Some(e) = &t.error {
        anyhow::bail!("history: {e}");
    }
    Ok(t)
}

pub fn tune(spec: &TuneSpec, options: &TuneOptions, progress: &Arc<TuneProgress>) -> anyhow::Result<TuneResult> {
    let started = Instant::now();
    let split = split(spec)?;
    let engine = run::engine(options.cache_dir.as_deref())?;
    let run_options = RunOptions { policy_dir: options.policy_dir.clone(), cache_dir: options.cache_dir.clone(), ..Default::default() };
    let search = &spec.search;
    let parallel = search.parallel.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
    let deadline = search.seconds.map(|s| started + Duration::from_secs(s));
    progress.planned.store(u64::from(search.runs) + search.finalists as u64 + 2, Ordering::Relaxed);

    // The baseline, on both parts.
    let baseline_config = Config::load(&spec.baseline.config).map_err(|e| anyhow::anyhow!("baseline: {e}"))?;
    let baseline_pool = match &spec.baseline.pool {
        Some(id) => baseline_config.pools.iter().find(|p| &p.id == id).ok_or_else(|| anyhow::anyhow!("baseline: {}: no pool `{id}`", spec.baseline.config.display()))?,
        None => baseline_config.pools.first().ok_or_else(|| anyhow::anyhow!("baseline: {}: no pool", spec.baseline.config.display()))?,
    };
    let baseline = prepare_config(&baseline_config, baseline_pool, &run_options, &engine).map_err(|e| anyhow::anyhow!("baseline: {e}"))?;
    let base_fit = run_part(&split, vec![("baseline".into(), baseline.clone())], &run_options, false)?;
    let base_held = run_part(&split, vec![("baseline".into(), baseline.clone())], &run_options, true)?;
    progress.done.fetch_add(2, Ordering::Relaxed);
    let baseline_result = |t: &TraceResult| -> anyhow::Result<Scores> {
        let r = &t.sets[0];
        match &r.failed {
            Some(e) => anyhow::bail!("baseline: {e}"),
            None => Ok(scores(r)),
        }
    };
    let (baseline_fit, baseline_held_back) = (baseline_result(&base_fit)?, baseline_result(&base_held)?);
    let bounds_fit = bounds(spec, &baseline_fit);
    let bounds_held_back = bounds(spec, &baseline_held_back);

    let bases: Vec<Base> = spec.candidates.iter().map(Base::load).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    let paths: Vec<Vec<&str>> = spec.candidates.iter().map(|f| f.params.iter().map(|p| p.path.as_str()).collect()).collect();
    let mut rng = Rng::new(search.seed);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let budget = search.runs as usize;
    let key = |c: &Candidate| c.fit.map_or((true, f64::INFINITY), |s| search::rank_key(objective(spec.objective.minimize, &s), bounds_fit.violation(&s)));

    // Evaluate points on the fit part, `parallel` × 2 sets at a time.
    let evaluate = |points: Vec<(usize, Vec<Value>)>, candidates: &mut Vec<Candidate>| -> anyhow::Result<()> {
        for batch in points.chunks(parallel * 2) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let mut sets = Vec::new();
            let first = candidates.len();
            for (family, values) in batch {
                let id = candidates.len();
                let named: Vec<(String, Value)> = paths[*family].iter().map(|p| p.to_string()).zip(values.iter().cloned()).collect();
                let mut c = Candidate { id, family: spec.candidates[*family].name.clone(), values: named, fit: None, held_back: None, fit_scored_steps: 0, held_back_scored_steps: 0, failed: None, text: String::new() };
                match bases[*family].config(&paths[*family], values) {
                    Ok((text, config, pool)) => {
                        c.text = text;
                        let prepared = prepare_config(&config, &pool, &run_options, &engine).unwrap_or_else(Prepared::Failed);
                        sets.push((format!("c{id}"), prepared));
                    }
                    Err(e) => sets.push((format!("c{id}"), Prepared::Failed(e))),
                }
                candidates.push(c);
            }
            let t = run_part(&split, sets, &run_options, false)?;
            for (c, r) in candidates[first..].iter_mut().zip(&t.sets) {
                match &r.failed {
                    Some(e) => c.failed = Some(e.clone()),
                    None => {
                        c.fit = Some(scores(r));
                        c.fit_scored_steps = r.metrics.steps;
                    }
                }
            }
            progress.done.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    };
    let fresh = |family: usize, values: Vec<Value>, seen: &mut HashSet<String>| -> Option<(usize, Vec<Value>)> {
        seen.insert(format!("{family}:{values:?}")).then_some((family, values))
    };

    // Phase 1: each family's own config, then a Latin hypercube over its ranges.
    let families = spec.candidates.len();
    let share = (budget / 2).max(families) / families;
    let mut first = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let own = base.own_values(&paths[i]);
        let n = share.saturating_sub(own.is_some() as usize).max(usize::from(own.is_none()));
        first.extend(own.and_then(|v| fresh(i, v, &mut seen)));
        if !base.domains.is_empty() {
            for p in search::latin_hypercube(&base.domains, n, &mut rng) {
                first.extend(fresh(i, p, &mut seen));
            }
        }
    }
    first.truncate(budget);
    evaluate(first, &mut candidates)?;

    // Phase 2: refine around the best, the steps shrinking each round.
    let mut radius = 0.15;
    let mut stale = 0;
    while candidates.len() < budget && deadline.is_none_or(|d| Instant::now() < d) && stale < 20 {
        let mut ranked: Vec<&Candidate> = candidates.iter().filter(|c| c.fit.is_some()).collect();
        ranked.sort_by(|a, b| key(a).partial_cmp(&key(b)).expect("no NaN keys"));
        let leaders: Vec<(usize, Vec<Value>)> = ranked
            .iter()
            .take(4)
            .map(|c| {
                let family = spec.candidates.iter().position(|f| f.name == c.family).expect("a known family");
                (family, c.values.iter().map(|(_, v)| v.clone()).collect())
            })
            .filter(|(f, _)| !bases[*f].domains.is_empty())
            .collect();
        if leaders.is_empty() {
            break;
        }
        let want = (parallel * 2).min(budget - candidates.len());
        let mut round = Vec::new();
        for k in 0..want * 4 {
            if round.len() == want {
                break;
            }
            let (family, point) = &leaders[k % leaders.len()];
            let next = search::neighbour(&bases[*family].domains, point, radius, &mut rng);
            round.extend(fresh(*family, next, &mut seen));
        }
        if round.is_empty() {
            stale += 1;
            radius = (radius * 1.5).min(0.5);
            continue;
        }
        evaluate(round, &mut candidates)?;
        radius = (radius * 0.8).max(0.02);
    }

    // The front and the finalists, from the fit part only.
    let scored: Vec<(f64, f64)> = candidates.iter().map(|c| c.fit.map_or((f64::NAN, f64::NAN), |s| (objective(spec.objective.minimize, &s), s.theta_u))).collect();
    let front: Vec<usize> = search::pareto_front(&scored);
    let mut order: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].fit.is_some()).collect();
    order.sort_by(|&a, &b| key(&candidates[a]).partial_cmp(&key(&candidates[b])).expect("no NaN keys"));
    let finalists: Vec<usize> = order.into_iter().take(search.finalists).collect();

    // The held-back part: the finalists, then the choice.
    let mut held_trace = base_held;
    for batch in finalists.chunks(parallel * 2) {
        let mut sets = Vec::new();
        for &i in batch {
            let c = &candidates[i];
            let family = spec.candidates.iter().position(|f| f.name == c.family).expect("a known family");
            let values: Vec<Value> = c.values.iter().map(|(_, v)| v.clone()).collect();
            let prepared = match bases[family].config(&paths[family], &values) {
                Ok((_, config, pool)) => prepare_config(&config, &pool, &run_options, &engine).unwrap_or_else(Prepared::Failed),
                Err(e) => Prepared::Failed(e),
            };
            sets.push((format!("c{i}"), prepared));
        }
        let t = run_part(&split, sets, &run_options, true)?;
        for (&i, r) in batch.iter().zip(&t.sets) {
            match &r.failed {
                Some(e) => candidates[i].failed = Some(e.clone()),
                None => {
                    candidates[i].held_back = Some(scores(r));
                    candidates[i].held_back_scored_steps = r.metrics.steps;
                }
            }
        }
        held_trace.sets.extend(t.sets);
        progress.done.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    let held_key = |c: &Candidate| c.held_back.map_or((true, f64::INFINITY), |s| search::rank_key(objective(spec.objective.minimize, &s), bounds_held_back.violation(&s)));
    let chosen = finalists.iter().copied().filter(|&i| candidates[i].held_back.is_some()).min_by(|&a, &b| held_key(&candidates[a]).partial_cmp(&held_key(&candidates[b])).expect("no NaN keys"));
    let mut notes = Vec::new();
    match chosen.and_then(|i| candidates[i].held_back.map(|s| (i, s))) {
        None => notes.push("no finalist ran on the held-back part: every candidate failed (see `failed`)".into()),
        Some((i, s)) => {
            let missed = bounds_held_back.missed(&s);
            if !missed.is_empty() {
                notes.push(format!(
                    "no finalist met the bounds on the held-back part; the chosen one misses least: {}. The fit part's best did not carry over: the later part differs from the earlier (compare the baseline's own figures on the two parts)",
                    missed.join(", ")
                ));
            }
            let (o, bo) = (objective(spec.objective.minimize, &s), objective(spec.objective.minimize, &baseline_held_back));
            if bo > 0.0 && o > bo * 0.7 {
                // Why: was there anything better to find on the fit part?
                let best_fit = candidates.iter().filter_map(|c| c.fit.filter(|f| bounds_fit.violation(f) <= 0.0).map(|f| (c.id, objective(spec.objective.minimize, &f)))).min_by(|a, b| a.1.total_cmp(&b.1));
                let bf = objective(spec.objective.minimize, &baseline_fit);
                let why = match best_fit {
                    Some((id, x)) if bf > 0.0 && x > bf * 0.7 => format!(
                        "on the fit part too, the best of {} candidates within the bounds (#{id}) was only {:.1} % below the baseline: the searched families trade θ_U for the objective along about the baseline's own curve on this history, so no setting of them does much better under these bounds",
                        candidates.len(),
                        (1.0 - x / bf) * 100.0
                    ),
                    Some((id, x)) => format!("on the fit part #{id} was {:.1} % below the baseline, but the held-back part did not bear it out", (1.0 - x / bf) * 100.0),
                    None => "on the fit part no candidate met the bounds either".into(),
                };
                notes.push(format!("the chosen set's objective is {:.1} % below the baseline's on the held-back part, short of 30 %; {why}", (1.0 - o / bo) * 100.0));
            }
            if s.cost_ratio > 1.15 {
                notes.push(format!("the chosen set costs {:.3}× the oracle on the held-back part, above 1.15×", s.cost_ratio));
            }
            if candidates[i].values.iter().zip(bases_own(&bases, &paths, spec, &candidates[i])).all(|((_, v), own)| Some(v) == own.as_ref()) {
                notes.push(format!("the chosen set is the `{}` family's own config, unchanged: nothing searched did better on the held-back part", candidates[i].family));
            }
        }
    }
    // Keep the plot to the baseline and the chosen set.
    let chosen_name = chosen.map(|i| format!("c{i}"));
    held_trace.sets.retain(|s| s.set == "baseline" || Some(&s.set) == chosen_name.as_ref());
    for s in &mut held_trace.sets {
        if s.set != "baseline" {
            s.set = format!("chosen ({})", candidates[chosen.expect("named")].family);
        }
    }
    let chosen_config = chosen.map(|i| {
        let c = &candidates[i];
        let family = spec.candidates.iter().find(|f| f.name == c.family).expect("a known family");
        format!("{}{}", candidate::header(&family.config, &c.family, &c.values), c.text)
    });
    Ok(TuneResult {
        trace: split.sim.traces[0].name(),
        steps: split.steps,
        capacity: split.capacity,
        warmup_steps: split.warmup_steps,
        fit_steps: split.fit_steps,
        minimize: spec.objective.minimize,
        baseline_fit,
        baseline_held_back,
        bounds_fit,
        bounds_held_back,
        runs: candidates.len() as u64 + finalists.len() as u64 + 2,
        candidates,
        front,
        finalists,
        chosen,
        notes,
        wall_s: started.elapsed().as_secs_f64(),
        chosen_config,
        held_back_trace: Some(held_trace),
    })
}
