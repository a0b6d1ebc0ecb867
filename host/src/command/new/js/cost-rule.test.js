import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costRuleApi } from './app.js';

test('clamps to what the cap pays for', () => {
  const out = costRuleApi.evaluate({
    pool: { id: 'p', running: 2, booting: 0, min: 0, max: 50 },
    proposed: 10,
    kind: 'm5',
    catalog: [{ name: 'm5', onDemandHourly: 0.5 }],
    metrics: [],
    now: 0,
    settings: '{"max_hourly": 3}',
  });
  assert.deepEqual(out.verdict, { tag: 'clamp', val: 6 });
});
