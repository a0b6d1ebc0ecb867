// scalewise policies in JavaScript.
//
// Why the kit looks like this:
// - A policy is one `evaluate(input, settings, state)` function handed to
//   `strategy`, `costRule` or `consensus`, which return the object
//   componentize-js exports (`strategyApi`, `costRuleApi`, `consensusApi`).
// - The host's values arrive with 64-bit times as BigInts and typed arrays.
//   The glue turns them into plain numbers and arrays once per call, so a
//   policy does ordinary arithmetic and its tests build inputs by hand.
// - Settings are checked against a schema built from `number()`, `string()`,
//   ... with an error that names the field, as the Rust and Python kits do;
//   they are parsed once per distinct text (a warm instance sees the same
//   text every call).
// - State is a plain object: the defaults given, overlaid with what the host
//   kept from the last call, mutated in place and stored as JSON again.
// - The kit imports nothing from the host, so it runs under `node --test`.
//   `scalewise policy build` wraps the project in an entry that hands the
//   kit the host's log (`globalThis.__scalewiseHost`), then componentizes it.
// - Throwing `Abstain`, `NoOpinion` or a `SettingsError` declines with a
//   reason. Anything else is a bug: the glue prints `policy error: ...` and
//   rethrows, so the component traps, the host reports that line, and the
//   last good version keeps serving.

const native = typeof process !== 'undefined' && !!(process.versions && process.versions.node);

// --- errors ---------------------------------------------------------------

export const NO_OPINION = 'no opinion: ';

/** Decline this call with a reason (no samples yet, say). */
export class Abstain extends Error {}

/** Abstain on purpose: the policy has nothing to say here (a decline, not a fault). */
export class NoOpinion extends Abstain {
  constructor(reason) {
    super(NO_OPINION + reason);
  }
}

/** Settings the policy cannot use; the message names the field. */
export class SettingsError extends Error {}

/** What a natively called `evaluate`/`validateConfig` throws when the policy declines. */
export class PolicyError extends Error {
  constructor(value) {
    super(value);
    this.value = value;
  }
}

// --- the host -------------------------------------------------------------

/** Messages logged under a test runner, as `[level, message]` pairs. */
export const logged = [];

function emit(level, message) {
  // Set by the entry module `scalewise policy build` writes; absent under a test runner.
  const host = globalThis.__scalewiseHost;
  if (host) host.log(level, String(message));
  else {
    logged.push([level, String(message)]);
    if (logged.length > 1000) logged.splice(0, logged.length - 1000);
  }
}

export const log = {
  trace: (m) => emit('trace', m),
  debug: (m) => emit('debug', m),
  info: (m) => emit('info', m),
  warn: (m) => emit('warn', m),
  error: (m) => emit('error', m),
};

// --- gauges ---------------------------------------------------------------

let reported = [];

/** Report `value` as gauge `name` for this call; the last value of a name wins, NaN is dropped. */
export function report(name, value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return;
  const g = reported.find((x) => x.name === name);
  if (g) g.value = value;
  else reported.push({ name: String(name), value });
}

// --- settings schema ------------------------------------------------------

const describe = (v) => {
  let s;
  try {
    s = JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
};
const at = (path) => (path ? `${path}: ` : '');

function field(kind, check, opts = {}) {
  return { kind, check, ...opts };
}
/** A number (a whole one is fine); `{default, min, max}` optional. */
export const number = (opts) =>
  field('number', (v, p, o) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new SettingsError(`${at(p)}expected a number, got ${describe(v)}`);
    if (o.min !== undefined && v < o.min) throw new SettingsError(`${at(p)}must be at least ${o.min}, got ${v}`);
    if (o.max !== undefined && v > o.max) throw new SettingsError(`${at(p)}must be at most ${o.max}, got ${v}`);
    return v;
  }, opts);
/** A whole number. */
export const integer = (opts) =>
  field('integer', (v, p, o) => {
    if (!Number.isInteger(v)) throw new SettingsError(`${at(p)}expected a whole number, got ${describe(v)}`);
    return number(o).check(v, p, o);
  }, opts);
export const string = (opts) =>
  field('string', (v, p) => {
    if (typeof v !== 'string') throw new SettingsError(`${at(p)}expected a string, got ${describe(v)}`);
    return v;
  }, opts);
export const boolean = (opts) =>
  field('boolean', (v, p) => {
    if (typeof v !== 'boolean') throw new SettingsError(`${at(p)}expected true or false, got ${describe(v)}`);
    return v;
  }, opts);
/** A list of `item`s. */
export const list = (item, opts) =>
  field('list', (v, p) => {
    if (!Array.isArray(v)) throw new SettingsError(`${at(p)}expected a list, got ${describe(v)}`);
    return v.map((x, i) => parseValue(item, x, `${p}[${i}]`));
  }, opts);
/** A table with the given fields; unknown fields are refused. */
export const object = (fields, opts) =>
  field('object', (v, p) => parseObject(fields, v, p), opts);
/** May be absent or null. */
export const optional = (inner) => ({ ...inner, optional: true });
/** Anything JSON. */
export const any = (opts) => field('any', (v) => v, opts);

function parseValue(schema, v, path) {
  if (v === null && schema.optional) return null;
  return schema.check(v, path, schema);
}

function parseObject(fields, v, path) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SettingsError(`${at(path)}expected a table, got ${describe(v)}`);
  const names = Object.keys(fields);
  for (const k of Object.keys(v)) {
    if (!names.includes(k)) {
      throw new SettingsError(`${path ? path + '.' : ''}${k}: unknown field, expected one of ${names.map((n) => '`' + n + '`').join(', ')}`);
    }
  }
  const out = {};
  for (const [k, schema] of Object.entries(fields)) {
    const sub = path ? `${path}.${k}` : k;
    if (k in v && v[k] !== undefined) out[k] = parseValue(schema, v[k], sub);
    else if ('default' in schema) out[k] = structuredCopy(schema.default);
    else if (schema.optional) out[k] = null;
    else throw new SettingsError(`${sub}: missing field`);
  }
  return out;
}

const structuredCopy = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** Parse settings JSON against a schema (an object of fields, or `null` for anything). */
export function parseSettings(schema, text) {
  const source = text && text.trim() ? text : '{}';
  let value;
  try {
    value = JSON.parse(source);
  } catch (e) {
    throw new SettingsError(`invalid settings: not JSON: ${e.message}`);
  }
  if (!schema) return value;
  try {
    return parseObject(schema, value, '');
  } catch (e) {
    if (e instanceof SettingsError) throw new SettingsError(`invalid settings: ${e.message}`);
    throw e;
  }
}

// --- helpers --------------------------------------------------------------

const finite = (xs) => Array.from(xs).filter((v) => typeof v === 'number' && Number.isFinite(v));

/** The window of metric `name`, or undefined. */
export const metric = (input, name) => input.metrics.find((w) => w.name === name);
/** The newest value of a window, or undefined. */
export const last = (w) => (w && w.values.length ? w.values[w.values.length - 1] : undefined);
/** The window as `{at, value}` samples, oldest first. */
export const samples = (w) => w.times.map((t, i) => ({ at: t, value: w.values[i] }));
/** The samples no older than `windowMs` before `now`. */
export const since = (w, now, windowMs) => samples(w).filter((s) => s.at >= now - windowMs);
/** Arithmetic mean of the finite values, or undefined. */
export function mean(values) {
  const xs = finite(values);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}
/** Mean of a window's samples in the last `windowMs` before `now`. */
export const meanSince = (w, now, windowMs) => mean(since(w, now, windowMs).map((s) => s.value));
/** Mean of the last `n` finite values. */
export const movingAverage = (values, n) => mean(finite(values).slice(-Math.max(n, 1)));
/** Exponentially weighted moving average, `alpha` in (0, 1]. */
export function ewma(values, alpha) {
  const a = Math.min(Math.max(alpha, Number.MIN_VALUE), 1);
  let acc;
  for (const v of finite(values)) acc = acc === undefined ? v : a * v + (1 - a) * acc;
  return acc;
}
/** The `p`-th percentile (0 to 100) of a window or a list, interpolated between ranks. */
export function percentile(values, p) {
  const list = Array.isArray(values) || ArrayBuffer.isView(values) ? values : values.values;
  const xs = finite(list).sort((a, b) => a - b);
  if (!xs.length) return undefined;
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * (xs.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo);
}
/** A least-squares line through a window: `{slope (per ms), intercept, origin, at(t), perSecond()}`. */
export function linearTrend(w) {
  const pts = w.times.map((t, i) => [t, w.values[i]]).filter(([, v]) => Number.isFinite(v));
  if (!pts.length) return undefined;
  const origin = pts[0][0];
  const n = pts.length;
  const mx = pts.reduce((s, [t]) => s + (t - origin), 0) / n;
  const my = pts.reduce((s, [, v]) => s + v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const [t, v] of pts) {
    const dx = t - origin - mx;
    sxx += dx * dx;
    sxy += dx * (v - my);
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  return { slope, intercept, origin, at: (t) => intercept + slope * (t - origin), perSecond: () => slope * 1000 };
}
/** Per-second rate of a counter over the window, tolerating resets. */
export function counterRate(w) {
  if (w.times.length === 0) return undefined;
  const seconds = (w.times[w.times.length - 1] - w.times[0]) / 1000;
  if (seconds <= 0) return undefined;
  let inc = 0;
  for (let i = 1; i < w.values.length; i++) inc += w.values[i] >= w.values[i - 1] ? w.values[i] - w.values[i - 1] : w.values[i];
  return inc / seconds;
}
/** Running plus booting. */
export const capacity = (pool) => pool.running + pool.booting;
/** `desired` limited to the pool's [min, max]; NaN becomes the current capacity. */
export const clamp = (pool, desired) =>
  Number.isNaN(desired) ? capacity(pool) : Math.min(Math.max(desired, pool.min), Math.max(pool.max, pool.min));
/** A vote's proposal, or undefined when the expert abstained. */
export const proposalOf = (vote) => (vote.ballot.tag === 'proposed' ? vote.ballot.val : undefined);
/** Verdicts of a cost rule. */
export const allow = () => ({ tag: 'allow' });
export const clampTo = (capacity) => ({ tag: 'clamp', val: capacity });
export const deny = () => ({ tag: 'deny' });

// --- conversion of the host's values --------------------------------------

const num = (v) => (typeof v === 'bigint' ? Number(v) : v);
function numbers(list) {
  // A loop, not Array.from with a mapping function: the component's engine
  // interprets, and the iterator protocol costs more than the work.
  const out = new Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = num(list[i]);
  return out;
}
// A window's times convert to numbers on first use, through a getter on a
// class (one shape for every window, cheaper for the engine than an object
// literal with accessors); its values stay the host's Float64Array, which
// indexes, iterates and maps like an array. A policy reads one or two of the
// windows it is given, and the rest cost nothing.
class Window {
  constructor(w) {
    this.name = w.name;
    this.values = w.values;
    this._times = w.times;
    this._converted = null;
  }
  get times() {
    return this._converted ?? (this._converted = numbers(this._times));
  }
}
function window(w) {
  return Array.isArray(w.times) ? w : new Window(w);
}
function windows(list) {
  const out = new Array(list.length);
  for (let i = 0; i < list.length; i++) out[i] = window(list[i]);
  return out;
}
const actions = (list) => {
  const out = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    out[i] = typeof a.at === 'bigint' ? { at: Number(a.at), from: a.from, to: a.to, reason: a.reason } : a;
  }
  return out;
};
const pool = (p) => (p.booting === undefined ? { ...p, booting: 0 } : p);
const strategyInput = (i) => ({
  pool: pool(i.pool),
  metrics: windows(i.metrics ?? []),
  now: num(i.now ?? 0),
  recentActions: actions(i.recentActions ?? []),
  settings: i.settings ?? '',
  state: i.state,
});
const costInput = (i) => ({
  pool: pool(i.pool),
  proposed: i.proposed,
  kind: i.kind,
  catalog: i.catalog ?? [],
  budget: i.budget,
  placement: i.placement,
  metrics: windows(i.metrics ?? []),
  now: num(i.now ?? 0),
  settings: i.settings ?? '',
  state: i.state,
});
const consensusInput = (i) => ({ pool: pool(i.pool), votes: i.votes ?? [], now: num(i.now ?? 0), settings: i.settings ?? '', state: i.state });

// --- state ----------------------------------------------------------------

function decodeState(defaults, raw) {
  if (defaults === undefined || defaults === null) return undefined;
  const fresh = structuredCopy(defaults);
  if (!raw || raw.length === 0 || raw[0] === 0) return fresh;
  try {
    const kept = JSON.parse(new TextDecoder().decode(raw));
    return kept && typeof kept === 'object' && !Array.isArray(kept) ? { ...fresh, ...kept } : fresh;
  } catch {
    return fresh; // written by an incompatible version: start afresh
  }
}
const encodeState = (defaults, state) =>
  defaults === undefined || defaults === null ? undefined : new TextEncoder().encode(JSON.stringify(state));

// --- the glue -------------------------------------------------------------

function failure(e) {
  if (e instanceof Abstain || e instanceof SettingsError) {
    if (native) throw new PolicyError(e.message);
    throw e.message; // componentize-js returns a thrown string as the call's error
  }
  // The innermost frame in the policy's own code, not the kit's.
  const frames = e && e.stack ? String(e.stack).split('\n').filter((l) => l.includes('@') || l.includes(' at ')) : [];
  const where = frames.find((l) => !l.includes('scalewise-policy/') && !l.includes('@scalewise/policy')) || frames[0] || '';
  console.error(`policy error: ${e && e.name ? e.name : 'Error'}: ${e && e.message !== undefined ? e.message : describe(e)}${where ? ` (at ${where.trim()})` : ''}`);
  throw e;
}

function mustBeNumber(v, name) {
  if (typeof v !== 'number') throw new TypeError(`evaluate returned ${name} = ${describe(v)}, not a number`);
  return v;
}

function role({ evaluate, settings = null, state, validate }, convert, shape) {
  if (typeof evaluate !== 'function') throw new TypeError('a policy needs an `evaluate(input, settings, state)` function');
  let cache = [null, null];
  const parsed = (text) => {
    if (cache[0] !== null && cache[0] === text) return cache[1];
    const s = parseSettings(settings, text);
    cache = [text, s];
    return s;
  };
  return {
    validateConfig(text) {
      try {
        const s = parsed(text);
        const problem = validate ? validate(s) : undefined;
        if (problem) throw new SettingsError(String(problem));
      } catch (e) {
        failure(e);
      }
    },
    evaluate(raw) {
      try {
        const input = convert(raw);
        const s = parsed(input.settings);
        const st = decodeState(state, input.state);
        reported = [];
        const out = evaluate(input, s, st);
        if (out === null || typeof out !== 'object') throw new TypeError(`evaluate returned ${describe(out)}, not an object`);
        const gauges = reported;
        reported = [];
        return shape(out, gauges, encodeState(state, st));
      } catch (e) {
        failure(e);
      }
    },
  };
}

/** The `strategyApi` export: `evaluate(input, settings, state)` returns `{desired, confidence, reason}`. */
export const strategy = (policy) =>
  role(policy, strategyInput, (p, gauges, state) => ({
    proposal: { desired: mustBeNumber(p.desired, 'desired'), confidence: mustBeNumber(p.confidence, 'confidence'), reason: String(p.reason ?? '') },
    gauges,
    state,
  }));

/** The `costRuleApi` export: `evaluate` returns `{verdict, costPerHour, reason, placement?}`. */
export const costRule = (policy) =>
  role(policy, costInput, (d, _gauges, state) => {
    const v = d.verdict;
    if (!v || !['allow', 'clamp', 'deny'].includes(v.tag) || (v.tag === 'clamp' && !Number.isInteger(v.val))) {
      throw new TypeError(`evaluate returned verdict = ${describe(v)}, not allow(), clampTo(n) or deny()`);
    }
    return { verdict: v, costPerHour: mustBeNumber(d.costPerHour, 'costPerHour'), reason: String(d.reason ?? ''), placement: d.placement ?? undefined, state };
  });

/** The `consensusApi` export: `evaluate` returns `{desired, confidence, explanation}`. */
export const consensus = (policy) =>
  role(policy, consensusInput, (c, _gauges, state) => ({
    desired: mustBeNumber(c.desired, 'desired'),
    confidence: mustBeNumber(c.confidence, 'confidence'),
    explanation: String(c.explanation ?? ''),
    state,
  }));

export const CONTRACT = 'scalewise:policy@0.2.0';
