//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::control::LagOf;
use crate::decide::budget::BudgetStatus;

/// Histogram bounds for policy evaluation latency, in seconds.
const BOUNDS: [f64; 12] = [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2];

/// Histogram bounds for tick lag, in seconds.
const LAG_BOUNDS: [f64; 8] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// A per-pool gauge read off the budget: name, help, value.
type BudgetGauge = (&'static str, &'static str, fn(&BudgetStatus) -> f64);

/// A family's HELP and TYPE lines.
fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escape a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(state: &AppState) -> String {
    let mut o = String::new();
    family(&mut o, "scalewise_build_info", "gauge", "The running build: its version.");
    let _ = writeln!(o, "scalewise_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    process(&mut o);
    if let Some(r) = &state.reload {
        let r = r.status.lock().unwrap().clone();
        family(&mut o, "scalewise_config_reloads_total", "counter", "Config reloads since the host started, by outcome.");
        let _ = writeln!(o, "scalewise_config_reloads_total{{outcome=\"applied\"}} {}", r.applied);
        let _ = writeln!(o, "scalewise_config_reloads_total{{outcome=\"refused\"}} {}", r.refused);
        family(&mut o, "scalewise_config_last_reload_ok", "gauge", "0 when the newest config reload was refused (the running config goes on).");
        let _ = writeln!(o, "scalewise_config_last_reload_ok {}", r.last.as_ref().is_none_or(|l| l.applied) as u8);
        family(&mut o, "scalewise_config_generation", "gauge", "Configs run since the host started: 1, and one more per reload that changed something.");
        let _ = writeln!(o, "scalewise_config_generation {}", r.generation);
    }
    let pools: Vec<_> = state.live.load().pools.values().map(|p| p.handle.snapshot()).collect();
    family(&mut o, "scalewise_pool_capacity", "gauge", "Members of the pool by state.");
    for p in &pools {
        let id = label(&p.id);
        let _ = writeln!(o, "scalewise_pool_capacity{{pool=\"{id}\",state=\"running\"}} {}", p.running);
        let _ = writeln!(o, "scalewise_pool_capacity{{pool=\"{id}\",state=\"booting\"}} {}", p.booting);
    }
    family(&mut o, "scalewise_pool_desired_capacity", "gauge", "Capacity the last decision asked for.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_pool_desired_capacity{{pool=\"{}\"}} {}", label(&p.id), p.desired);
    }
    family(&mut o, "scalewise_pool_paused", "gauge", "1 if an operator paused the pool.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_pool_paused{{pool=\"{}\"}} {}", label(&p.id), p.paused as u8);
    }
    family(&mut o, "scalewise_decisions_total", "counter", "Decisions made since the host started.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_decisions_total{{pool=\"{}\"}} {}", label(&p.id), p.decisions);
    }
    family(&mut o, "scalewise_actions_total", "counter", "Scaling actions taken since the host started.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_actions_total{{pool=\"{}\"}} {}", label(&p.id), p.actions);
    }
    family(&mut o, "scalewise_pool_candidate_ticks_total", "counter", "Ticks the pool's candidate set was evaluated in shadow (since it became the candidate).");
    for p in &pools {
        if let Some(c) = &p.candidate {
            let _ = writeln!(o, "scalewise_pool_candidate_ticks_total{{pool=\"{}\"}} {}", label(&p.id), c.ticks);
        }
    }
    family(&mut o, "scalewise_pool_candidate_differed_total", "counter", "Of those, ticks where the candidate would have decided otherwise, by direction.");
    for p in &pools {
        if let Some(c) = &p.candidate {
            let _ = writeln!(o, "scalewise_pool_candidate_differed_total{{pool=\"{}\",direction=\"higher\"}} {}", label(&p.id), c.higher);
            let _ = writeln!(o, "scalewise_pool_candidate_differed_total{{pool=\"{}\",direction=\"lower\"}} {}", label(&p.id), c.lower);
        }
    }
    family(&mut o, "scalewise_pool_candidate_mean_abs_diff", "gauge", "The candidate's mean difference from the serving set, in members.");
    for p in &pools {
        if let Some(c) = &p.candidate {
            let _ = writeln!(o, "scalewise_pool_candidate_mean_abs_diff{{pool=\"{}\"}} {}", label(&p.id), c.mean_abs_diff);
        }
    }
    family(&mut o, "scalewise_journal_healthy", "gauge", "0 while journal writes fail for the pool.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_journal_healthy{{pool=\"{}\"}} {}", label(&p.id), p.journal_error.is_none() as u8);
    }

    family(&mut o, "scalewise_pool_min", "gauge", "The pool's configured minimum capacity.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_pool_min{{pool=\"{}\"}} {}", label(&p.id), p.min);
    }
    family(&mut o, "scalewise_pool_max", "gauge", "The pool's configured maximum capacity.");
    for p in &pools {
        let _ = writeln!(o, "scalewise_pool_max{{pool=\"{}\"}} {}", label(&p.id), p.max);
    }
    family(&mut o, "scalewise_actions_failed_total", "counter", "Scaling actions that failed, by cause (what asked: policy, manual, approval) and error (launch, remove, read, provider, not_leading).");
    for p in &pools {
        for (cause, errors) in &p.failed_actions {
            for (error, n) in errors {
                let _ = writeln!(o, "scalewise_actions_failed_total{{pool=\"{}\",cause=\"{}\",error=\"{}\"}} {n}", label(&p.id), label(cause), label(error));
            }
        }
    }
    advisor_families(&mut o, &pools);
    family(&mut o, "scalewise_pool_cost_per_hour", "gauge", "What the pool's capacity costs per hour, priced by its catalog and the spot share it bought.");
    for p in &pools {
        if let Some(c) = p.cost_per_hour {
            let _ = writeln!(o, "scalewise_pool_cost_per_hour{{pool=\"{}\"}} {c}", label(&p.id));
        }
    }
    family(&mut o, "scalewise_budget_spent", "gauge", "Money spent in the current budget period (accrued whether or not the pool has a budget).");
    for p in pools.iter().filter(|p| p.cost_per_hour.is_some()) {
        let _ = writeln!(o, "scalewise_budget_spent{{pool=\"{}\"}} {}", label(&p.id), p.spent);
    }
    let budget_gauges: [BudgetGauge; 1] = [("scalewise_budget_limit", "The pool's budget for the current period.", |b| b.limit)];
    for (name, help, value) in budget_gauges {
        family(&mut o, name, "gauge", help);
        for p in &pools {
            if let Some(b) = &p.budget {
                let _ = writeln!(o, "{name}{{pool=\"{}\"}} {}", label(&p.id), value(b));
            }
        }
    }
    family(&mut o, "scalewise_budget_alert", "gauge", "1 once spend has crossed the threshold (percent of the budget) this period.");
    for p in &pools {
        if let Some(b) = &p.budget {
            for t in &b.alerts {
                let _ = writeln!(o, "scalewise_budget_alert{{pool=\"{}\",threshold=\"{t}\"}} {}", label(&p.id), b.fired.contains(t) as u8);
            }
        }
    }
    let last: Vec<_> = state.live.load().pools.values().filter_map(|p| p.handle.recent(None, 1).pop()).collect();
    family(&mut o, "scalewise_pool_limited", "gauge", "1 if the last decision's scale-up was cut to what the target can hold.");
    for r in &last {
        let _ = writeln!(o, "scalewise_pool_limited{{pool=\"{}\"}} {}", label(&r.pool), r.limited.is_some() as u8);
    }
    family(&mut o, "scalewise_pool_metric", "gauge", "The newest value of each metric a pool read at its last decision; absent while the metric has no data.");
    for r in &last {
        for m in &r.metrics {
            if let Some(v) = m.last.filter(|v| v.is_finite()) {
                let _ = writeln!(o, "scalewise_pool_metric{{pool=\"{}\",metric=\"{}\"}} {v}", label(&r.pool), label(&m.name));
            }
        }
    }
    family(&mut o, "scalewise_policy_gauge", "gauge", "Numbers a strategy reported about itself at the pool's last decision (a forecast's error, ...).");
    for r in &last {
        for v in &r.votes {
            for g in &v.gauges {
                let _ = writeln!(o, "scalewise_policy_gauge{{pool=\"{}\",policy=\"{}\",name=\"{}\"}} {}", label(&r.pool), label(&v.expert), label(&g.name), g.value);
            }
        }
    }

    family(&mut o, "scalewise_source_up", "gauge", "1 if the named metric source answered its last query, 0 if it could not (the reason is in GET /sources); absent while unknown.");
    for (name, s) in state.live.load().sources.iter() {
        let up = match s.status() {
            scalewise_providers::SourceStatus::Up(_) => 1,
            scalewise_providers::SourceStatus::Unavailable(_) => 0,
            scalewise_providers::SourceStatus::Unknown => continue,
        };
        let _ = writeln!(o, "scalewise_source_up{{source=\"{}\",kind=\"{}\"}} {up}", label(name), s.kind());
    }

    if let Some(l) = &state.leadership {
        family(&mut o, "scalewise_leader", "gauge", "1 while this replica holds the leader lease and may act, 0 on standby.");
        let _ = writeln!(o, "scalewise_leader{{identity=\"{}\"}} {}", label(l.identity()), u8::from(l.is_leader()));
    }

    let lags: [(&str, &str, LagOf); 2] = [
        ("scalewise_pool_tick_lag_seconds", "From a tick's due time to its decision being recorded.", |h| &h.lag),
        (
            "scalewise_pool_decide_lag_seconds",
            "From a tick's due time to its decision being made, before the journal's write.",
            |h| &h.decide_lag,
        ),
    ];
    for (name, help, histogram) in lags {
        family(&mut o, name, "histogram", help);
        for p in state.live.load().pools.values() {
            let id = label(&p.handle.id);
            let (cumulative, count, sum) = histogram(&p.handle).cumulative(&LAG_BOUNDS);
            for (b, c) in LAG_BOUNDS.iter().zip(cumulative) {
                let _ = writeln!(o, "{name}_bucket{{pool=\"{id}\",le=\"{b}\"}} {c}");
            }
            let _ = writeln!(o, "{name}_bucket{{pool=\"{id}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(o, "{name}_sum{{pool=\"{id}\"}} {sum}");
            let _ = writeln!(o, "{name}_count{{pool=\"{id}\"}} {count}");
        }
    }

    let statuses = state.registry.statuses();
    family(&mut o, "scalewise_policy_calls_total", "counter", "Policy evaluations by outcome.");
    for s in &statuses {
        let id = label(&s.id);
        let failed = s.declined + s.errors + s.traps + s.timeouts + s.memory_cap + s.invalid_outputs;
        let _ = writeln!(o, "scalewise_policy_calls_total{{policy=\"{id}\",outcome=\"ok\"}} {}", s.calls.saturating_sub(failed));
        for (outcome, n) in [("declined", s.declined), ("error", s.errors), ("trap", s.traps), ("timeout", s.timeouts), ("memory_cap", s.memory_cap), ("invalid_output", s.invalid_outputs)] {
            let _ = writeln!(o, "scalewise_policy_calls_total{{policy=\"{id}\",outcome=\"{outcome}\"}} {n}");
        }
    }
    family(&mut o, "scalewise_policy_fallbacks_total", "counter", "Calls answered by the previous version after the serving one faulted.");
    for s in &statuses {
        let _ = writeln!(o, "scalewise_policy_fallbacks_total{{policy=\"{}\"}} {}", label(&s.id), s.fallbacks);
    }
    family(&mut o, "scalewise_policy_clash", "gauge", "1 while several files in the policy directory define this policy id; none of them is loaded.");
    for s in &statuses {
        let _ = writeln!(o, "scalewise_policy_clash{{policy=\"{}\"}} {}", label(&s.id), u8::from(s.clash.is_some()));
    }
    family(&mut o, "scalewise_policy_version_info", "gauge", "The serving version of each policy.");
    for s in &statuses {
        if let Some(v) = &s.serving {
            let _ = writeln!(
                o,
                "scalewise_policy_version_info{{policy=\"{}\",generation=\"{}\",digest=\"{}\",runtime=\"{}\",compiled_by=\"{}\"}} 1",
                label(&s.id),
                v.generation,
                label(&v.digest),
                v.runtime,
                v.compiled_by
            );
        }
    }
    family(&mut o, "scalewise_policy_evaluation_seconds", "histogram", "Policy evaluation latency, sandbox included.");
    for (id, status) in state.registry.status_handles() {
        let id = label(&id);
        let (cumulative, count, sum) = status.latency().cumulative(&BOUNDS);
        for (b, c) in BOUNDS.iter().zip(cumulative) {
            let _ = writeln!(o, "scalewise_policy_evaluation_seconds_bucket{{policy=\"{id}\",le=\"{b}\"}} {c}");
        }
        let _ = writeln!(o, "scalewise_policy_evaluation_seconds_bucket{{policy=\"{id}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(o, "scalewise_policy_evaluation_seconds_sum{{policy=\"{id}\"}} {sum}");
        let _ = writeln!(o, "scalewise_policy_evaluation_seconds_count{{policy=\"{id}\"}} {count}");
    }
    o
}

/// Prometheus exposition: pools, decisions, actions, lag, budgets, policy
/// calls and latency, gauges policies report, the process.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "The text exposition format, version 0.0.4", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&state)).into_response()
}

/// The standard `process_*` series, from /proc/self.
fn process(o: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rfind(')').map(|i| stat[i + 1..].split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf has no preconditions.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK) as f64, libc::sysconf(libc::_SC_PAGESIZE) as f64) };
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())));
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).ok();
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)).and_then(|v| v.parse::<f64>().ok())
    });
    // After the name: utime is field 14 of the man page (index 11 here),
    // stime 15, starttime 22, vsize 23, rss 24.
    let series: [(&str, &str, &str, Option<f64>); 6] = [
        ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", field(11).zip(field(12)).map(|(u, s)| (u + s) / ticks)),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(21).map(|p| p * page)),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(20)),
        ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", field(19).zip(boot).map(|(s, b)| b + s / ticks)),
        ("process_open_fds", "gauge", "Number of open file descriptors.", fds.map(|n| n as f64)),
        ("process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds),
    ];
    for (name, kind, help, value) in series {
        if let Some(v) = value {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    }
}

/// A pool's advisor: its calls by outcome and cause, their time, tokens,
/// the hourly cap and what is used of it, and the spend.
fn advisor_families(o: &mut String, pools: &[crate::control::PoolSnapshot]) {
    let advised: Vec<(&str, &crate::control::advisor::AdvisorStatus)> = pools.iter().filter_map(|p| p.advisor.as_ref().map(|a| (p.id.as_str(), a))).collect();
    family(o, "scalewise_advisor_calls_total", "counter", "Calls to the pool's advisor by outcome: answered, refused (the answer broke its schema, role or bounds), failed (no answer).");
    for (id, a) in &advised {
        for (outcome, n) in &a.calls {
            let _ = writeln!(o, "scalewise_advisor_calls_total{{pool=\"{}\",outcome=\"{}\"}} {n}", label(id), label(outcome));
        }
    }
    family(o, "scalewise_advisor_failures_total", "counter", "Advisor calls that failed or were refused, by cause (timeout, rate_limited, http_error, unreachable, too_large, not_a_completion, refused, bad_answer).");
    for (id, a) in &advised {
        for (cause, n) in &a.failures {
            let _ = writeln!(o, "scalewise_advisor_failures_total{{pool=\"{}\",cause=\"{}\"}} {n}", label(id), label(cause));
        }
    }
    // A summary without quantiles: its _sum over its _count is the mean
    // latency, which is all a per-pool series of a few calls an hour needs.
    family(o, "scalewise_advisor_call_seconds", "summary", "Time spent in advisor calls that ended, whatever their outcome.");
    for (id, a) in &advised {
        let _ = writeln!(o, "scalewise_advisor_call_seconds_sum{{pool=\"{}\"}} {}", label(id), a.latency_ms_sum as f64 / 1000.0);
        let _ = writeln!(o, "scalewise_advisor_call_seconds_count{{pool=\"{}\"}} {}", label(id), a.calls.values().sum::<u64>());
    }
    family(o, "scalewise_advisor_tokens_total", "counter", "Tokens the advisor's endpoint reported, by kind (prompt, completion).");
    for (id, a) in &advised {
        let _ = writeln!(o, "scalewise_advisor_tokens_total{{pool=\"{}\",kind=\"prompt\"}} {}", label(id), a.prompt_tokens);
        let _ = writeln!(o, "scalewise_advisor_tokens_total{{pool=\"{}\",kind=\"completion\"}} {}", label(id), a.completion_tokens);
    }
    family(o, "scalewise_advisor_calls_last_hour", "gauge", "Advisor calls made in the last hour.");
    for (id, a) in &advised {
        let _ = writeln!(o, "scalewise_advisor_calls_last_hour{{pool=\"{}\"}} {}", label(id), a.calls_last_hour);
    }
    family(o, "scalewise_advisor_max_calls_per_hour", "gauge", "The cap on advisor calls in any hour.");
    for (id, a) in &advised {
        let _ = writeln!(o, "scalewise_advisor_max_calls_per_hour{{pool=\"{}\"}} {}", label(id), a.max_calls_per_hour);
    }
    family(o, "scalewise_advisor_skipped_total", "counter", "Advisor questions not asked because the hourly cap was reached.");
    for (id, a) in &advised {
        let _ = writeln!(o, "scalewise_advisor_skipped_total{{pool=\"{}\"}} {}", label(id), a.skipped_at_cap);
    }
    family(o, "scalewise_advisor_spend_total", "counter", "Tokens priced by the advisor's cost_per_1k_tokens, where it is set.");
    for (id, a) in &advised {
        if let Some(spend) = a.spend {
            let _ = writeln!(o, "scalewise_advisor_spend_total{{pool=\"{}\"}} {spend}", label(id));
        }
    }
}
