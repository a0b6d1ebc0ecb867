// The scalewise dashboard: polls the API and redraws. No dependencies.
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
};
const svgEl = (tag, attrs) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const esc = (x) => String(x).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const fmt = (x) => (x === null || x === undefined ? "–" : Number.isInteger(x) ? String(x) : x.toFixed(2));

async function json(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// The load series: the first metric the decisions carry.
function loadOf(d) {
  const m = (d.metrics || []).find((m) => m.last !== null && m.last !== undefined);
  return m ? { name: m.name, value: m.last } : null;
}

// Ticks for an axis from 0 to at least `max`: whole numbers when `whole`
// (workers come whole), else round steps of 1, 2 or 5 × a power of ten.
function ticks(max, whole) {
  const raw = Math.max(max, whole ? 1 : 1e-9) / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  if (whole) step = Math.max(1, Math.ceil(step));
  const top = Math.max(step, Math.ceil(max / step) * step);
  const out = [];
  for (let v = 0; v <= top + step / 2; v += step) out.push(Math.round(v * 1e9) / 1e9);
  return { top, values: out };
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

// Capacity and desired on the left axis, in whole workers; the load on its
// own right axis; time along the bottom.
function chart(decisions, loadName) {
  const W = 600, H = 230, L = 34, R = 46, T = 10, B = 26;
  const svg = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, "data-points": String(decisions.length) });
  const text = (x, y, s, attrs = {}) => {
    const t = svgEl("text", { x, y, "font-size": 10, fill: "#6b7385", ...attrs });
    t.textContent = s;
    svg.append(t);
  };
  if (decisions.length < 2) {
    text(L, H / 2, "waiting for decisions…", { "font-size": 13 });
    return svg;
  }
  const t0 = decisions[0].at, t1 = decisions[decisions.length - 1].at;
  const cap = decisions.map((d) => d.running + d.booting);
  const want = decisions.map((d) => d.desired);
  const load = decisions.map((d) => (loadOf(d) || { value: 0 }).value);
  const capAxis = ticks(Math.max(...cap, ...want), true);
  const loadAxis = ticks(Math.max(...load), false);
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v, max) => H - B - (v / max) * (H - B - T);
  for (const v of capAxis.values) {
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y(v, capAxis.top), y2: y(v, capAxis.top), stroke: "#e3e6ec" }));
    text(L - 4, y(v, capAxis.top) + 4, String(v), { "text-anchor": "end", class: "cap-tick" });
  }
  for (const v of loadAxis.values) text(W - R + 4, y(v, loadAxis.top) + 4, fmt(v), { class: "load-tick", fill: "var(--load)" });
  text(W - R + 4, T, loadName || "load", { fill: "var(--load)", "font-size": 9 });
  const n = 4;
  for (let i = 0; i <= n; i++) {
    const t = t0 + ((t1 - t0) * i) / n;
    const anchor = i === 0 ? "start" : i === n ? "end" : "middle";
    svg.append(svgEl("line", { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, stroke: "#b8bdc8" }));
    text(x(t), H - 8, clock(t), { "text-anchor": anchor, class: "time-tick", "data-at": String(Math.round(t)) });
  }
  const line = (vals, max, color, cls, step) => {
    const pts = [];
    decisions.forEach((d, i) => {
      if (step && i > 0) pts.push(`${x(d.at)},${y(vals[i - 1], max)}`);
      pts.push(`${x(d.at)},${y(vals[i], max)}`);
    });
    svg.append(svgEl("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2, class: cls }));
  };
  line(load, loadAxis.top, "var(--load)", "load", false);
  line(cap, capAxis.top, "var(--cap)", "capacity", true);
  line(want, capAxis.top, "var(--want)", "desired", true);
  return svg;
}

function decisionItem(d) {
  const li = el("li", { class: "decision", "data-seq": String(d.seq) });
  const time = new Date(d.at).toLocaleTimeString();
  const cap = d.running + d.booting;
  let head = `#${d.seq} ${time} · ${cap} → ${d.desired}`;
  if (d.mode !== "live") head += ` (${d.mode.replace("_", " ")})`;
  li.append(el("div", { class: "head" }, head));
  for (const v of d.votes) {
    const text = v.proposal
      ? `${v.expert} v${v.version}: ${fmt(v.proposal.desired)} (confidence ${fmt(v.proposal.confidence)}) — ${v.proposal.reason}`
      : `${v.expert}: abstained — ${v.abstained}`;
    const gauges = (v.gauges || []).map((g) => `${g.name} ${fmt(g.value)}`).join(", ");
    li.append(el("div", { class: v.proposal ? "vote" : "vote err" }, gauges ? `${text} [${gauges}]` : text));
  }
  li.append(el("div", { class: "why" }, `consensus ${d.consensus.policy}: ${d.consensus.explanation}`));
  for (const c of d.cost) li.append(el("div", { class: c.verdict === "error" ? "why err" : "why" }, `cost ${c.policy}: ${c.verdict} — ${c.reason}`));
  if (d.placement) {
    const p = d.placement;
    li.append(el("div", { class: "why" }, `placement: ${p.on_demand} on demand + ${p.spot} spot${p.kind ? ` of ${p.kind}` : ""}`));
  }
  if (d.limited) li.append(el("div", { class: "why clamp" }, `limited ${d.limited.wanted} → ${d.limited.to} because ${d.limited.why}`));
  for (const c of d.clamps) li.append(el("div", { class: "why clamp" }, `guardrail ${c.guardrail}: ${c.from} → ${c.to} (${c.reason})`));
  for (const a of d.alerts || []) li.append(el("div", { class: "why err" }, a));
  if (d.action) {
    const o = d.action.outcome;
    const status = o.status + (o.detail ? `: ${o.detail}` : "");
    li.append(el("div", { class: o.status === "failed" ? "why err" : "why act" }, `action ${d.action.from} → ${d.action.to} by ${d.action.cause}: ${status}`));
  }
  return li;
}

function poolSection(p, decisions) {
  const s = el("section", { class: "pool-card", "data-pool": p.id });
  s.append(el("h2", {}, `Pool ${p.id}`));
  const facts = el("div", { class: "facts" });
  facts.innerHTML = `<b>${p.running}</b> running · <b>${p.booting}</b> booting · desired <b>${p.desired}</b> · bounds ${p.min}–${p.max} · ${esc(p.target)}` +
    (p.paused ? " · <b>paused</b>" : "") + (p.dry_run ? " · dry run" : "") +
    (p.pending_approval ? ` · awaiting approval: ${p.pending_approval.from} → ${p.pending_approval.to}` : "") +
    (p.budget ? ` · budget ${fmt(p.budget.spent)} of ${fmt(p.budget.limit)} (${fmt(p.budget.percent)}%), ${fmt(p.budget.hourly)}/h` +
      (p.budget.fired.length ? ` · <span class="err">alert: past ${Math.max(...p.budget.fired)}%</span>` : "") : "") +
    (p.last_error ? ` · <span class="err">${esc(p.last_error)}</span>` : "") +
    (p.journal_error ? ` · <span class="err">${esc(p.journal_error)}</span>` : "");
  s.append(facts);
  const chronological = decisions.slice().reverse();
  const load = chronological.length ? loadOf(chronological[chronological.length - 1]) : null;
  const legend = el("div", { class: "legend" });
  legend.innerHTML = `<span><i style="background:var(--load)"></i>load${load ? ` (${esc(load.name)})` : ""}</span><span><i style="background:var(--cap)"></i>capacity</span><span><i style="background:var(--want)"></i>desired</span>`;
  const grid = el("div", { class: "pool" });
  grid.append(el("div", {}, chart(chronological, load && load.name), legend));
  const feed = el("ol", { class: "feed" });
  decisions.slice(0, 30).forEach((d) => feed.append(decisionItem(d)));
  grid.append(feed);
  s.append(grid);
  return s;
}

async function refresh() {
  try {
    const pools = await json("/pools");
    const sections = [];
    for (const p of pools) {
      const decisions = await json(`/pools/${encodeURIComponent(p.id)}/decisions?limit=180`);
      sections.push(poolSection(p, decisions));
    }
    document.getElementById("pools").replaceChildren(...sections);
    const policies = await json("/policies");
    const rows = policies.map((s) => {
      const v = s.serving;
      const faults = s.traps + s.timeouts + s.memory_cap + s.invalid_outputs;
      const err = (s.last_load_error || s.last_error || {}).message || "";
      // Nothing uses it and nothing configured it: not an error, just idle.
      const idle = s.state === "unconfigured";
      return el("tr", { "data-policy": s.id, "data-state": s.state || "" },
        el("td", {}, s.id),
        el("td", {}, v ? el("code", {}, `v${v.generation} ${v.digest.slice(0, 12)}`) : idle ? "unconfigured, unused" : "not serving"),
        el("td", {}, v ? `${v.runtime}${v.compiled_by ? " / " + v.compiled_by : ""}` : "–"),
        el("td", {}, String(s.calls)),
        el("td", {}, fmt(s.latency_p99_us)),
        el("td", {}, String(faults)),
        el("td", { class: idle ? "muted" : err ? "err" : "" }, err));
    });
    document.querySelector("#policies tbody").replaceChildren(...rows);
    // With leader election: say whether this replica acts (textContent: no HTML).
    const leader = await json("/leader");
    const role = !leader ? "" : leader.leading ? ` · leading as ${leader.identity}`
      : ` · standby (${leader.identity}): ${leader.holder ? leader.holder + " holds the lease" : leader.detail || "no leader"}`;
    document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}${role}`;
    // For the layout test (and anyone curious): does the page fit its width?
    document.body.dataset.scrollWidth = String(document.documentElement.scrollWidth);
    document.body.dataset.viewWidth = String(window.innerWidth);
  } catch (e) {
    document.getElementById("status").textContent = `cannot reach the host: ${e.message}`;
  }
}

refresh();
setInterval(refresh, 1000);
