//! A simulation's results as a terminal table, JSON, CSV and an HTML page.
//!
//! The HTML report is one self-contained file (inline SVG, no scripts or
//! styles fetched from anywhere), so it can be mailed or attached to a
//! change request. Each trace gets its table and a plot of demand, the
//! oracle's supply and each set's supply. A few lines of script mark the
//! page with how many plotted series have a drawn size, which is what the
//! headless-browser test reads.

use std::fmt::Write;

use serde::Serialize;

use super::run::{SetResult, TraceResult};
use super::series::Series;
use super::spec::Environment;

#[derive(Serialize)]
struct Document<'a> {
    environment: &'a Environment,
    traces: &'a [TraceResult],
}

pub fn json(env: &Environment, traces: &[TraceResult]) -> String {
    serde_json::to_string_pretty(&Document { environment: env, traces }).expect("results serialize")
}

const CSV_HEADER: &str = "trace,set,status,theta_u,theta_o,tau_u,tau_o,instability,jitter,unserved,instance_hours,cost,cost_ratio,launches,interruptions,decisions,actions,declined,declined_steps,faults,faulted_steps,wall_ms";

pub fn csv(traces: &[TraceResult]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for t in traces {
        let _ = writeln!(out, "{},oracle,ok,0,,0,,,,0,{:.4},{:.4},1,{},0,,,,,", t.name, t.oracle.instance_hours, t.oracle_cost, t.oracle.launches);
        for s in &t.sets {
            let m = &s.metrics;
            let status = match &s.failed {
                Some(why) => format!("\"failed: {}\"", why.replace('"', "'")),
                None => "ok".into(),
            };
            let _ = writeln!(
                out,
                "{},{},{status},{:.4},{:.4},{:.4},{:.4},{:.4},{:.6},{:.6},{:.4},{:.4},{},{},{},{},{},{},{},{},{},{}",
                t.name,
                s.set,
                m.theta_u,
                m.theta_o,
                m.tau_u,
                m.tau_o,
                m.instability,
                m.jitter,
                m.unserved,
                s.instance_hours,
                s.cost,
                s.cost_ratio.map_or(String::new(), |r| format!("{r:.4}")),
                s.bill.launches,
                s.bill.interruptions,
                s.decisions,
                s.actions,
                s.declined,
                s.declined_steps,
                s.faults,
                s.faulted_steps,
                s.wall_ms
            );
        }
    }
    out
}

/// The terminal table.
pub fn table(traces: &[TraceResult]) -> String {
    let mut out = String::new();
    for t in traces {
        let scored = if t.warmup_steps > 0 { format!("; scored from step {}", t.warmup_steps) } else { String::new() };
        let _ = writeln!(out, "trace {} ({} steps of {} s, {:.1} per instance, boot {} steps{scored})", t.name, t.steps, t.step_secs, t.capacity, t.boot_steps);
        if let Some(e) = &t.error {
            let _ = writeln!(out, "  error: {e}");
        }
        if let Some(s) = t.stats.summary() {
            let _ = writeln!(out, "  repaired: {s}");
        }
        let _ = writeln!(
            out,
            "  {:<20} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>9} {:>10} {:>10} {:>8} {:>7} {:>6}",
            "set", "θ_U %", "θ_O %", "τ_U %", "τ_O %", "k %", "j", "unserved", "inst-hours", "cost", "×oracle", "decl", "fault"
        );
        let _ = writeln!(
            out,
            "  {:<20} {:>7.2} {:>7} {:>6.1} {:>6} {:>6} {:>7} {:>9} {:>10.1} {:>10.2} {:>8.3} {:>6}",
            "oracle", 0.0, "-", 0.0, "-", "-", "-", "0.00%", t.oracle.instance_hours, t.oracle_cost, 1.0, "-"
        );
        for s in &t.sets {
            if let Some(why) = &s.failed {
                let _ = writeln!(out, "  {:<20} failed: {why}", s.set);
                continue;
            }
            let m = &s.metrics;
            let _ = writeln!(
                out,
                "  {:<20} {:>7.2} {:>7.2} {:>6.1} {:>6.1} {:>6.1} {:>7.3} {:>8.2}% {:>10.1} {:>10.2} {:>8} {:>7} {:>6}",
                s.set,
                m.theta_u,
                m.theta_o,
                m.tau_u,
                m.tau_o,
                m.instability,
                m.jitter,
                m.unserved * 100.0,
                s.instance_hours,
                s.cost,
                s.cost_ratio.map_or("-".into(), |r| format!("{r:.3}")),
                s.declined,
                s.faults
            );
        }
    }
    out
}

const COLOURS: &[&str] = &["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn polyline(series: &Series, x: impl Fn(f64) -> f64, y: impl Fn(f64) -> f64, style: &str, name: &str) -> String {
    let points: Vec<String> = series.points().iter().map(|&(s, v)| format!("{:.1},{:.1}", x(s), y(v))).collect();
    format!("<polyline class=\"series\" data-name=\"{}\" fill=\"none\" {style} points=\"{}\"><title>{}</title></polyline>\n", escape(name), points.join(" "), escape(name))
}

pub fn plot(t: &TraceResult) -> String {
    let (w, h, pad) = (960.0, 300.0, 40.0);
    let steps = t.demand.len().max(1) as f64;
    let ok: Vec<&SetResult> = t.sets.iter().filter(|s| s.failed.is_none()).collect();
    let top = std::iter::once(&t.demand)
        .chain(std::iter::once(&t.oracle_supply))
        .chain(ok.iter().map(|s| &s.supply))
        .flat_map(|s| s.points().into_iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let x = |s: f64| pad + (w - 2.0 * pad) * s / steps;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / top;
    let mut svg = format!("<svg class=\"plot\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"demand and supply, {}\">\n", escape(&t.name));
    let _ = writeln!(svg, "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{0}\" stroke=\"#999\"/>", h - pad, w - pad);
    let _ = writeln!(svg, "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">{top:.0} instances</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} steps</text>", pad - 8.0, w - pad, h - pad + 16.0, t.demand.len());
    svg.push_str(&polyline(&t.demand, x, y, "stroke=\"#000\" stroke-width=\"1.5\"", "demand"));
    svg.push_str(&polyline(&t.oracle_supply, x, y, "stroke=\"#777\" stroke-dasharray=\"4 3\"", "oracle"));
    for (i, s) in ok.iter().enumerate() {
        let style = format!("stroke=\"{}\" stroke-width=\"1\" opacity=\"0.85\"", COLOURS[i % COLOURS.len()]);
        svg.push_str(&polyline(&s.supply, x, y, &style, &s.set));
    }
    svg.push_str("</svg>\n<p class=\"legend\"><span style=\"color:#000\">■ demand</span> <span style=\"color:#777\">■ oracle</span>");
    for (i, s) in ok.iter().enumerate() {
        let _ = write!(svg, " <span style=\"color:{}\">■ {}</span>", COLOURS[i % COLOURS.len()], escape(&s.set));
    }
    svg.push_str("</p>\n");
    svg
}

pub fn html(env: &Environment, traces: &[TraceResult]) -> String {
    let mut body = String::new();
    for t in traces {
        let _ = writeln!(body, "<section><h2>{}</h2><p>{} steps of {} s; {:.1} load per instance; boot {} steps, drain {}, billed per {} s at {}/h; the first {} steps are warm-up, not scored.</p>", escape(&t.name), t.steps, t.step_secs, t.capacity, t.boot_steps, t.drain_steps, env.billing_secs, env.hourly, t.warmup_steps);
        if let Some(s) = t.stats.summary() {
            let _ = writeln!(body, "<p class=\"warn\">Repaired trace: {}</p>", escape(&s));
        }
        body.push_str(&plot(t));
        body.push_str("<table><tr><th>set</th><th>θ_U %</th><th>θ_O %</th><th>τ_U %</th><th>τ_O %</th><th>k %</th><th>j</th><th>unserved</th><th>instance-hours</th><th>cost</th><th>× oracle</th><th>declined</th><th>faults</th></tr>\n");
        let _ = writeln!(body, "<tr><td>oracle</td><td>0</td><td></td><td>0</td><td></td><td></td><td></td><td>0%</td><td>{:.1}</td><td>{:.2}</td><td>1</td><td></td></tr>", t.oracle.instance_hours, t.oracle_cost);
        for s in &t.sets {
            match &s.failed {
                Some(why) => {
                    let _ = writeln!(body, "<tr class=\"failed\"><td>{}</td><td colspan=\"12\">failed: {}</td></tr>", escape(&s.set), escape(why));
                }
                None => {
                    let m = &s.metrics;
                    let _ = writeln!(
                        body,
                        "<tr><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.3}</td><td>{:.2}%</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(&s.set), m.theta_u, m.theta_o, m.tau_u, m.tau_o, m.instability, m.jitter, m.unserved * 100.0, s.instance_hours, s.cost,
                        s.cost_ratio.map_or("-".into(), |r| format!("{r:.3}")), s.declined, s.faults
                    );
                }
            }
        }
        body.push_str("</table></section>\n");
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scalewise simulation</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0 2em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.failed td {{ color: #b00; text-align: left; }}
.warn {{ color: #a60; }}
</style></head>
<body>
<h1>scalewise simulation</h1>
<p>θ_U, θ_O: under- and over-provisioning accuracy; τ_U, τ_O: timeshare; k: instability; j: jitter (SPEC RG elasticity metrics).
Unserved: the share of load no running instance could take. × oracle: cost over the clairvoyant oracle's.</p>
{body}
<script>
// Count the plotted series the browser actually laid out with a size.
const drawn = [...document.querySelectorAll('polyline.series')].filter(p => {{ const b = p.getBBox(); return b.width > 0 && p.getTotalLength() > 0; }});
document.body.dataset.plotted = String(drawn.length);
</script>
</body></html>
"#
    )
}
