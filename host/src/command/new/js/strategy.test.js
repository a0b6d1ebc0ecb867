import { test } from 'node:test';
import assert from 'node:assert/strict';
import { strategyApi } from './app.js';

const input = (value, settings = '{"target_per_worker": 10}') => ({
  pool: { id: 'p', running: 2, booting: 0, min: 1, max: 20 },
  metrics: [{ name: 'queue_depth', times: [0], values: [value] }],
  now: 0,
  recentActions: [],
  settings,
});

test('divides by the target and stays in bounds', () => {
  assert.equal(strategyApi.evaluate(input(95)).proposal.desired, 10);
  assert.equal(strategyApi.evaluate(input(1e6)).proposal.desired, 20);
});

test('bad settings name the field', () => {
  assert.throws(() => strategyApi.validateConfig('{"target_per_worker": 0}'), (e) => e.value.includes('target_per_worker'));
});
