//! What `scalewise tune` prints and writes: the table, the JSON, and the
//! HTML report (the front and the held-back demand/supply plot).

use std::fmt::Write;

use super::search::Scores;
use super::{Candidate, TuneResult};
use crate::simulate::report::{escape, plot};

fn row(name: &str, s: &Scores) -> String {
    format!(
        "  {:<28} {:>7.2} {:>8.2} {:>6.1} {:>9.2}% {:>11.2} {:>8.3}",
        name,
        s.theta_u,
        s.theta_o,
        s.tau_u,
        s.unserved,
        s.cost,
        s.cost_ratio
    )
}

fn header() -> String {
    format!("  {:<28} {:>7} {:>8} {:>6} {:>10} {:>11} {:>8}", "set", "θ_U %", "θ_O %", "τ_U %", "unserved", "cost", "×oracle")
}

fn label(c: &Candidate) -> String {
    format!("#{} {}", c.id, c.family)
}

fn values(c: &Candidate) -> String {
    c.values.iter().map(|(p, v)| format!("{p} = {v}")).collect::<Vec<_>>().join(", ")
}

pub fn table(r: &TuneResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "history {}: {} steps, {:.1} load per instance; warm-up steps 0..{}, fit part {}..{} (searched), held-back part {}..{} (never searched; every choice and figure below it)",
        r.trace, r.steps, r.capacity, r.warmup_steps, r.warmup_steps, r.fit_steps, r.fit_steps, r.steps
    );
    let scored = r.candidates.iter().filter(|c| c.fit.is_some()).count();
    let failed = r.candidates.iter().filter(|c| c.failed.is_some()).count();
    let _ = writeln!(out, "{} candidate runs ({scored} scored, {failed} failed), {} runs in all, {:.1} s", r.candidates.len(), r.runs, r.wall_s);
    let _ = writeln!(out, "\nPareto front on the fit part ({} against θ_U):", r.minimize.name());
    let _ = writeln!(out, "{}", header());
    let _ = writeln!(out, "{}", row("baseline", &r.baseline_fit));
    for &i in &r.front {
        let c = &r.candidates[i];
        let _ = writeln!(out, "{}    {}", row(&label(c), c.fit.as_ref().expect("on the front")), values(c));
    }
    let _ = writeln!(out, "\nfinalists on the held-back part:");
    let _ = writeln!(out, "{}", header());
    let _ = writeln!(out, "{}", row("baseline", &r.baseline_held_back));
    for &i in &r.finalists {
        let c = &r.candidates[i];
        match (&c.held_back, &c.failed) {
            (Some(s), _) => {
                let mark = if Some(i) == r.chosen { " ← chosen" } else { "" };
                let _ = writeln!(out, "{}{mark}", row(&label(c), s));
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "  {:<28} failed: {e}", label(c));
            }
            _ => {}
        }
    }
    if let Some(c) = r.chosen.map(|i| &r.candidates[i])
        && let Some(s) = &c.held_back
    {
        let b = &r.baseline_held_back;
        let change = |x: f64, base: f64| if base > 0.0 { format!("{:+.1} %", (x / base - 1.0) * 100.0) } else { "-".into() };
        let _ = writeln!(out, "\nchosen: {} ({})", label(c), values(c));
        let _ = writeln!(
            out,
            "  held back, against the baseline: θ_O {:.2} vs {:.2} ({}), θ_U {:.2} vs {:.2}, unserved {:.2} % vs {:.2} %, cost {:.3}× the oracle",
            s.theta_o,
            b.theta_o,
            change(s.theta_o, b.theta_o),
            s.theta_u,
            b.theta_u,
            s.unserved,
            b.unserved,
            s.cost_ratio
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

pub fn json(r: &TuneResult) -> String {
    serde_json::to_string_pretty(r).expect("results serialize")
}

/// The front as a scatter: the objective against θ_U, the front joined.
fn scatter(r: &TuneResult) -> String {
    let (w, h, pad) = (640.0, 360.0, 48.0);
    let pts: Vec<(usize, f64, f64)> = r.candidates.iter().filter_map(|c| c.fit.map(|s| (c.id, r.objective(&s), s.theta_u))).filter(|p| p.1.is_finite() && p.2.is_finite()).collect();
    let bx = r.objective(&r.baseline_fit);
    let by = r.baseline_fit.theta_u;
    let xmax = pts.iter().map(|p| p.1).fold(bx, f64::max).max(1e-9) * 1.05;
    let ymax = pts.iter().map(|p| p.2).fold(by, f64::max).max(1e-9) * 1.05;
    let x = |v: f64| pad + (w - 2.0 * pad) * v / xmax;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / ymax;
    let mut svg = format!("<svg class=\"front\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"Pareto front\">\n");
    let _ = writeln!(svg, "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{0}\" stroke=\"#999\"/>", h - pad, w - pad);
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} (0 – {xmax:.1})</text>", w - pad, h - pad + 30.0, r.minimize.name());
    let _ = writeln!(svg, "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">θ_U % (0 – {ymax:.1})</text>", pad - 10.0);
    for (id, px, py) in &pts {
        let _ = writeln!(svg, "<circle class=\"candidate\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#9bb\"><title>#{id}</title></circle>", x(*px), y(*py));
    }
    let line: Vec<String> = r.front.iter().filter_map(|&i| r.candidates[i].fit.map(|s| format!("{:.1},{:.1}", x(r.objective(&s)), y(s.theta_u)))).collect();
    let _ = writeln!(svg, "<polyline class=\"series\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"><title>front</title></polyline>", line.join(" "));
    let _ = writeln!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"#d62728\"><title>baseline</title></circle>", x(bx), y(by));
    if let Some(s) = r.chosen.and_then(|i| r.candidates[i].fit) {
        let _ = writeln!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\"><title>chosen</title></circle>", x(r.objective(&s)), y(s.theta_u));
    }
    svg.push_str("</svg>\n<p class=\"legend\"><span style=\"color:#9bb\">● candidate</span> <span style=\"color:#1f77b4\">— front</span> <span style=\"color:#d62728\">● baseline</span> <span style=\"color:#2ca02c\">○ chosen</span> (fit part)</p>\n");
    svg
}

pub fn html(r: &TuneResult) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<pre>{}</pre>", escape(&table(r)));
    body.push_str("<h2>Pareto front, fit part</h2>\n");
    body.push_str(&scatter(r));
    if let Some(t) = &r.held_back_trace {
        let _ = writeln!(body, "<h2>Demand and supply: the baseline and the chosen set (scored from step {})</h2>", r.fit_steps);
        body.push_str(&plot(t));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scalewise tune: {}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
pre {{ font-size: 12px; overflow-x: auto; }}
svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>scalewise tune: {}</h1>
{body}
<script>
const drawn = [...document.querySelectorAll('polyline.series')].filter(p => {{ const b = p.getBBox(); return b.width > 0 && p.getTotalLength() > 0; }});
document.body.dataset.plotted = String(drawn.length);
</script>
</body></html>
"#,
        escape(&r.trace),
        escape(&r.trace)
    )
}
