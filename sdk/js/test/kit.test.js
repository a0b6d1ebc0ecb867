// The kit under node --test: what a policy author's tests rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sw from '../index.js';

const settings = {
  target: sw.number({ min: 0 }),
  metric: sw.string({ default: 'cpu' }),
  steps: sw.list(sw.object({ above: sw.number(), add: sw.integer() }), { default: [] }),
  cap: sw.optional(sw.integer()),
};

const api = sw.strategy({
  settings,
  state: { calls: 0 },
  evaluate(input, s, state) {
    state.calls += 1;
    const value = sw.last(sw.metric(input, s.metric));
    if (value === undefined) throw new sw.Abstain(`no samples for ${s.metric}`);
    if (value < 0) throw new sw.NoOpinion('negative load');
    sw.report('seen', value);
    sw.log.info(`value ${value}`);
    return { desired: sw.clamp(input.pool, value / s.target), confidence: 0.9, reason: 'ratio' };
  },
});

const window = (name, values) => ({ name, times: values.map((_, i) => BigInt(i * 1000)), values: Float64Array.from(values) });
const input = (values, text = '{"target": 2}', state) => ({
  pool: { id: 'p', running: 2, booting: 0, min: 1, max: 10 },
  metrics: [window('cpu', values)],
  now: 5000n,
  recentActions: [],
  settings: text,
  state,
});

test('settings errors name the field', () => {
  const cases = {
    '{"target": "x"}': 'target: expected a number, got "x"',
    '{"tagret": 1}': 'tagret: unknown field',
    '{}': 'target: missing field',
    '{"target": 1, "steps": [{"above": 1, "add": 1.5}]}': 'steps[0].add: expected a whole number',
    '{"target": -1}': 'target: must be at least 0',
    '[1]': 'expected a table',
    '{': 'not JSON',
  };
  for (const [text, message] of Object.entries(cases)) {
    assert.throws(() => sw.parseSettings(settings, text), (e) => e instanceof sw.SettingsError && e.message.startsWith('invalid settings: ') && e.message.includes(message), text);
  }
  assert.deepEqual(sw.parseSettings(settings, '{"target": 3}'), { target: 3, metric: 'cpu', steps: [], cap: null });
  assert.throws(() => api.validateConfig('{"target": true}'), (e) => e instanceof sw.PolicyError && e.value.includes('target: expected a number'));
});

test('the host values become plain numbers; state and gauges round-trip', () => {
  const out = api.evaluate(input([1, 8]));
  assert.equal(out.proposal.desired, 4);
  assert.deepEqual(out.gauges, [{ name: 'seen', value: 8 }]);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.state)), { calls: 1 });
  const again = api.evaluate(input([8], '{"target": 2}', out.state));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(again.state)), { calls: 2 });
  assert.deepEqual(sw.logged.at(-1), ['info', 'value 8']);
});

test('declines carry their reason; a wrong shape is named', () => {
  assert.throws(() => api.evaluate({ ...input([]), metrics: [] }), (e) => e.value === 'no samples for cpu');
  assert.throws(() => api.evaluate(input([-1])), (e) => e.value === 'no opinion: negative load');
  const bad = sw.strategy({ evaluate: () => ({ desired: 'many' }) });
  assert.throws(() => bad.evaluate(input([1], '')), /desired = "many", not a number/);
});

test('cost rule and consensus', () => {
  const rule = sw.costRule({ evaluate: (i, s) => ({ verdict: i.proposed > s.max ? sw.clampTo(s.max) : sw.allow(), costPerHour: 1, reason: 'r' }) });
  const out = rule.evaluate({ pool: { id: 'p', running: 1, min: 0, max: 9 }, proposed: 7, catalog: [], metrics: [], now: 0n, settings: '{"max": 5}' });
  assert.deepEqual(out.verdict, { tag: 'clamp', val: 5 });
  const votes = [
    { expert: 'a', weight: 1, ballot: { tag: 'proposed', val: { desired: 3, confidence: 1, reason: '' } } },
    { expert: 'b', weight: 1, ballot: { tag: 'abstained', val: 'down' } },
  ];
  const c = sw.consensus({ evaluate: (i) => ({ desired: Math.max(...i.votes.map(sw.proposalOf).filter(Boolean).map((p) => p.desired)), confidence: 1, explanation: 'max' }) });
  assert.equal(c.evaluate({ pool: { id: 'p', running: 1, min: 0, max: 9 }, votes, now: 0n, settings: '' }).desired, 3);
});

test('the same figures as the Rust SDK', () => {
  assert.equal(sw.mean([1, NaN, 3]), 2);
  assert.equal(sw.movingAverage([1, 2, 3, 5], 2), 4);
  assert.equal(sw.ewma([1, 2, 3], 0.5), 2.25);
  assert.equal(sw.percentile([10, 20, 30, 40, 50], 90), 46);
  const w = { name: 'x', times: [0, 1000, 2000], values: [1, 3, 5] };
  const t = sw.linearTrend(w);
  assert.ok(Math.abs(t.perSecond() - 2) < 1e-9 && Math.abs(t.at(3000) - 7) < 1e-9);
  assert.equal(sw.meanSince(w, 2000, 1000), 4);
  assert.equal(sw.counterRate({ name: 'c', times: [0, 1000, 2000], values: [10, 20, 5] }), 7.5);
});
