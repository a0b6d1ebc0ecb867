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
  if (!r.ok) {
    const why = await r.json().then((b) => b.error).catch(() => "");
    throw new Error(`${path}: HTTP ${r.status}${why ? `: ${why}` : ""}`);
  }
  return r.json();
}

// The API token, for the calls that change something. Kept for this tab
// only (sessionStorage), never in the page's URL.
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("scalewise-token") || "";
tokenInput.addEventListener("input", () => sessionStorage.setItem("scalewise-token", tokenInput.value));

// A mutating call, with the token when one is given. Without one the host
// refuses, and the refusal (its status and reason) is what the pool shows.
async function act(path, body, out, done) {
  const headers = { "content-type": "application/json" };
  const token = tokenInput.value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  out.className = "result muted";
  out.textContent = "…";
  try {
    const r = await fetch(path, { method: "POST", headers, body: body === undefined ? "" : JSON.stringify(body), cache: "no-store" });
    const answer = await r.json().catch(() => ({}));
    out.dataset.status = String(r.status);
    out.className = r.ok ? "result act" : "result err";
    out.textContent = r.ok ? done(answer) : `refused (HTTP ${r.status}): ${answer.error || r.statusText}`;
  } catch (e) {
    out.dataset.status = "0";
    out.className = "result err";
    out.textContent = `cannot reach the host: ${e.message}`;
  }
  refresh();
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
  li.append(el("div", { class: "head" }, el("a", { class: "open", href: decisionLink(d) }, head)));
  for (const v of d.votes) {
    // The advisor has no version; its abstentions are not faults of a policy.
    const advisor = v.expert === "advisor";
    const who = advisor || v.version === null ? v.expert : `${v.expert} v${v.version}`;
    const text = v.proposal
      ? `${who}: ${fmt(v.proposal.desired)} (confidence ${fmt(v.proposal.confidence)}) — ${v.proposal.reason}`
      : `${who}: ${v.declined ? "declined (no opinion)" : advisor ? "abstained" : "failed to answer"} — ${v.abstained}`;
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
  if (d.lifecycle) li.append(el("div", { class: "why act" }, d.lifecycle));
  const review = d.advisor && d.advisor.review;
  if (review) li.append(el("div", { class: review.verdict === "object" ? "why err" : "why" }, `advisor review ${review.from} → ${review.to}: ${review.verdict} — ${review.reason}`));
  if (d.shadow) {
    const s = d.shadow;
    const votes = s.votes.map((v) => v.proposal ? `${v.expert} v${v.version}: ${fmt(v.proposal.desired)}` : `${v.expert}: ${v.declined ? "declined" : "failed"}`).join(", ");
    li.append(el("div", { class: "why shadow" }, `candidate (shadow): ${s.desired}${s.desired === d.desired ? " (same)" : ` (${s.desired > d.desired ? "+" : ""}${s.desired - d.desired})`} — ${votes}`));
  }
  if (d.action) {
    const o = d.action.outcome;
    const status = o.status + (o.detail ? `: ${o.detail}` : "");
    li.append(el("div", { class: o.status === "failed" ? "why err" : "why act" }, `action ${d.action.from} → ${d.action.to} by ${d.action.cause}: ${status}`));
  }
  return li;
}

const decisionLink = (d) => `#/pools/${encodeURIComponent(d.pool)}/decisions/${d.seq}`;
const poolPath = (id, rest) => `/pools/${encodeURIComponent(id)}/${rest}`;

// One card per pool, built once: its controls keep what is typed into
// them while the facts, chart and feed redraw every second.
const cards = new Map();

function poolCard(id) {
  if (cards.has(id)) return cards.get(id);
  const section = el("section", { class: "pool-card", "data-pool": id });
  const facts = el("div", { class: "facts" });
  const result = el("div", { class: "result", role: "status" });
  const pause = el("button", { type: "button", class: "pause" });
  pause.addEventListener("click", () => {
    const verb = pause.dataset.action;
    act(poolPath(id, verb), undefined, result, () => (verb === "pause" ? "paused: decisions are recorded, not acted on" : "resumed"));
  });
  const approve = el("button", { type: "button", class: "approve" });
  approve.hidden = true;
  approve.addEventListener("click", () => act(poolPath(id, `approve/${approve.dataset.seq}`), undefined, result, (a) => `approved: scaling to ${a.capacity}`));
  const input = (name, attrs) => el("input", { name, ...attrs });
  const scale = el("form", { class: "scale" },
    el("label", {}, "to ", input("capacity", { type: "number", min: "0", step: "1", required: "", inputmode: "numeric" })),
    el("label", {}, "hold s ", input("hold_secs", { type: "number", min: "0", step: "1", placeholder: "default" })),
    el("label", {}, "reason ", input("reason", { type: "text", required: "", placeholder: "for the journal" })),
    el("button", { type: "submit" }, "Scale"));
  scale.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(scale);
    const body = { capacity: Number(f.get("capacity")), reason: String(f.get("reason")) };
    if (String(f.get("hold_secs")).trim() !== "") body.hold_secs = Number(f.get("hold_secs"));
    act(poolPath(id, "scale"), body, result, (a) => `scaled to ${a.capacity}` + (a.hold ? `, held until ${clock(a.hold.until)}` : ""));
  });
  const chartBox = el("div", {});
  const feed = el("ol", { class: "feed" });
  const grid = el("div", { class: "pool" }, chartBox, feed);
  section.append(el("h2", {}, `Pool ${id}`), facts, el("div", { class: "controls" }, pause, approve, scale), result, grid);
  const card = { section, facts, pause, approve, chartBox, feed, newest: null };
  cards.set(id, card);
  return card;
}

function updatePool(p, decisions) {
  const c = poolCard(p.id);
  c.facts.innerHTML = `<b>${p.running}</b> running · <b>${p.booting}</b> booting · desired <b>${p.desired}</b> · bounds ${p.min}–${p.max} · ${esc(p.target)}` +
    (p.paused ? " · <b>paused</b>" : "") + (p.dry_run ? " · dry run" : "") +
    (p.hold ? ` · held at <b>${p.hold.target}</b> until ${clock(p.hold.until)}` : "") +
    (p.pending_approval ? ` · awaiting approval: ${p.pending_approval.from} → ${p.pending_approval.to}` +
      (p.pending_approval.reason ? ` (<span class="err">${esc(p.pending_approval.reason)}</span>)` : "") : "") +
    (p.advisor ? ` · advisor ${esc(p.advisor.model)}: ${p.advisor.calls_last_hour} of ${p.advisor.max_calls_per_hour} calls this hour` +
      (p.advisor.spend !== null && p.advisor.spend !== undefined ? `, spent ${fmt(p.advisor.spend)}` : "") +
      (p.advisor.last_problem ? ` · <span class="err">${esc(p.advisor.last_problem)}</span>` : "") : "") +
    (p.budget ? ` · budget ${fmt(p.budget.spent)} of ${fmt(p.budget.limit)} (${fmt(p.budget.percent)}%), ${fmt(p.budget.hourly)}/h` +
      (p.budget.fired.length ? ` · <span class="err">alert: past ${Math.max(...p.budget.fired)}%</span>` : "") : "") +
    (p.candidate ? ` · <span class="shadow">candidate ${esc(p.candidate.candidate)}: differed ${p.candidate.differed} of ${p.candidate.ticks} ticks ` +
      `(${p.candidate.higher} higher, ${p.candidate.lower} lower, mean ${fmt(p.candidate.mean_abs_diff)})</span>` : "") +
    (p.previous ? ` · rollback returns to ${esc(p.previous)}` : "") +
    (p.last_error ? ` · <span class="err">${esc(p.last_error)}</span>` : "") +
    (p.journal_error ? ` · <span class="err">${esc(p.journal_error)}</span>` : "");
  c.pause.dataset.action = p.paused ? "resume" : "pause";
  c.pause.textContent = p.paused ? "Resume" : "Pause";
  const pending = p.pending_approval;
  c.approve.hidden = !pending;
  if (pending) {
    c.approve.dataset.seq = String(pending.seq);
    c.approve.textContent = `Approve #${pending.seq}: ${pending.from} → ${pending.to}`;
  }
  const chronological = decisions.slice().reverse();
  const load = chronological.length ? loadOf(chronological[chronological.length - 1]) : null;
  const legend = el("div", { class: "legend" });
  legend.innerHTML = `<span><i style="background:var(--load)"></i>load${load ? ` (${esc(load.name)})` : ""}</span><span><i style="background:var(--cap)"></i>capacity</span><span><i style="background:var(--want)"></i>desired</span>`;
  c.chartBox.replaceChildren(chart(chronological, load && load.name), legend);
  // The feed only when it moved, so a link is not replaced under the pointer.
  const newest = decisions.length ? decisions[0].seq : null;
  if (newest !== c.newest) {
    c.newest = newest;
    c.feed.replaceChildren(...decisions.slice(0, 30).map(decisionItem));
  }
  return c.section;
}

async function refresh() {
  try {
    const pools = await json("/pools");
    const sections = [];
    for (const p of pools) {
      const decisions = await json(`/pools/${encodeURIComponent(p.id)}/decisions?limit=180`);
      sections.push(updatePool(p, decisions));
    }
    const box = document.getElementById("pools");
    // Re-append only when the set of pools changed, so focus stays put.
    if (sections.length !== box.children.length || sections.some((sec, i) => box.children[i] !== sec)) box.replaceChildren(...sections);
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

// One decision with everything in it, at #/pools/ID/decisions/SEQ: every
// metric read, every vote, the consensus, each cost verdict, each clamp and
// the action. Built with textContent only: reasons come from policies.
function table(head, rows) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const r of rows) body.append(el("tr", {}, ...r.map((c) => el("td", {}, c === null || c === undefined ? "–" : typeof c === "number" ? fmt(c) : c))));
  t.append(body);
  return el("div", { class: "table-wrap" }, t);
}

// The advisor's part: its review, the questions sent, the answers heard
// (the model's raw words shown as text, never as markup).
function advisorView(a) {
  const out = [el("h3", {}, "Advisor")];
  if (a.review) out.push(el("p", { class: a.review.verdict === "object" ? "err" : "" }, `review of ${a.review.from} → ${a.review.to}: ${a.review.verdict} — ${a.review.reason}`));
  if (a.asked && a.asked.length) out.push(table(["asked", "why"], a.asked.map((q) => [q.question, q.why])));
  if (a.heard && a.heard.length) {
    out.push(table(["answer to", "outcome", "latency ms", "tokens", "detail", "raw"], a.heard.map((h) => [
      h.question, h.outcome, h.latency_ms, h.prompt_tokens === undefined ? null : `${h.prompt_tokens} + ${h.completion_tokens}`, h.detail, h.raw || ""])));
  }
  if (out.length === 1) out.push(el("p", { class: "muted" }, a.ballot ? "its vote is in the table above" : "nothing asked or heard at this tick"));
  return out;
}

function decisionView(d) {
  const when = new Date(d.at);
  // An operator's action is recorded on its own: no metrics read, no votes.
  const operator = d.action && d.action.cause !== "policy" && !d.votes.length;
  const none = (what) => el("p", { class: "muted" }, operator ? `no ${what}: an operator's action, not the policies'` : `no ${what}`);
  const out = [
    el("h2", {}, `Pool ${d.pool} · decision #${d.seq} `, el("a", { href: "#", class: "close" }, "close")),
    el("div", { class: "facts" }, `${when.toLocaleString()} (${when.toISOString()}) · ${d.mode.replace("_", " ")} · ` +
      `${d.running} running + ${d.booting} booting · proposed ${d.proposed} · desired ${d.desired} · inputs ${d.input_digest}`),
    el("h3", {}, "Metrics read"),
    d.metrics.length ? table(["metric", "samples", "newest", "problem"], d.metrics.map((m) => [m.name, m.samples, m.last, m.error || ""])) : none("metrics read"),
    el("h3", {}, "Votes"),
    !d.votes.length ? none("votes") : table(["expert", "version", "weight", "desired", "confidence", "reason", "gauges"], d.votes.map((v) => [
      v.expert, v.version === null ? null : `v${v.version}`, v.weight,
      v.proposal ? v.proposal.desired : (v.declined ? "declined" : "failed"), v.proposal ? v.proposal.confidence : null,
      (v.proposal ? v.proposal.reason : v.abstained) + (v.fallback ? ` (fallback: ${v.fallback})` : ""),
      (v.gauges || []).map((g) => `${g.name} ${fmt(g.value)}`).join(", ")])),
    el("h3", {}, "Consensus"),
    el("p", {}, `${d.consensus.policy}: ${d.consensus.desired === null ? "no answer" : fmt(d.consensus.desired)} ` +
      `(confidence ${fmt(d.consensus.confidence)}) — ${d.consensus.explanation}`),
  ];
  if (d.cost.length) {
    out.push(el("h3", {}, "Cost rules"), table(["rule", "verdict", "clamp to", "cost / h", "reason"], d.cost.map((c) => [c.policy, c.verdict, c.clamp_to, c.cost_per_hour, c.reason])));
  }
  if (d.placement) out.push(el("p", {}, `placement: ${d.placement.on_demand} on demand + ${d.placement.spot} spot${d.placement.kind ? ` of ${d.placement.kind}` : ""}`));
  if (d.limited) out.push(el("p", { class: "clamp" }, `limited ${d.limited.wanted} → ${d.limited.to} because ${d.limited.why}`));
  out.push(el("h3", {}, "Guardrails"), d.clamps.length
    ? table(["rule", "from", "to", "why"], d.clamps.map((c) => [c.guardrail, c.from, c.to, c.reason]))
    : el("p", { class: "muted" }, "no guardrail changed the number"));
  for (const a of d.alerts || []) out.push(el("p", { class: "err" }, a));
  if (d.lifecycle) out.push(el("h3", {}, "Lifecycle"), el("p", { class: "act" }, d.lifecycle));
  if (d.advisor) out.push(...advisorView(d.advisor));
  if (d.shadow) {
    out.push(el("h3", {}, "Candidate, in shadow"), el("p", {}, `would have decided ${d.shadow.desired} (proposed ${d.shadow.proposed}); ${d.shadow.consensus.explanation}`),
      table(["expert", "version", "desired", "reason"], d.shadow.votes.map((v) => [v.expert, v.version === null ? null : `v${v.version}`, v.proposal ? v.proposal.desired : (v.declined ? "declined" : "failed"), v.proposal ? v.proposal.reason : v.abstained])));
  }
  out.push(el("h3", {}, "Action"));
  if (d.action) {
    const o = d.action.outcome;
    out.push(el("p", { class: o.status === "failed" ? "err action" : "act action" },
      `${d.action.from} → ${d.action.to} by ${d.action.cause} (${d.action.reason}): ${o.status}${o.detail ? `: ${o.detail}` : ""}`));
  } else {
    out.push(el("p", { class: "muted action" }, "none: the pool already held what was decided"));
  }
  const raw = el("pre");
  raw.textContent = JSON.stringify(d, null, 2);
  out.push(el("details", {}, el("summary", {}, "the record as JSON"), raw));
  return out;
}

async function showDecision() {
  const box = document.getElementById("detail");
  const m = location.hash.match(/^#\/pools\/([^/]+)\/decisions\/(\d+)$/);
  if (!m) {
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.seq;
    return;
  }
  box.hidden = false;
  // The box names the decision it shows only once that decision is in it,
  // and an answer for a hash that has since changed is dropped: a slow
  // fetch never paints one decision under another's number.
  const hash = location.hash;
  let view;
  try {
    view = decisionView(await json(`/pools/${m[1]}/decisions/${m[2]}`));
  } catch (e) {
    view = [el("h2", {}, "Decision ", el("a", { href: "#", class: "close" }, "close")), el("p", { class: "err" }, e.message)];
  }
  if (location.hash !== hash) return;
  box.replaceChildren(...view);
  box.dataset.seq = m[2];
  box.scrollIntoView();
}

window.addEventListener("hashchange", showDecision);
showDecision();
refresh();
setInterval(refresh, 1000);
