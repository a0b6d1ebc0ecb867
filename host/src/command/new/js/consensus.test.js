import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consensusApi } from './app.js';

const vote = (desired, weight) => ({ expert: 'e', weight, ballot: { tag: 'proposed', val: { desired, confidence: 1, reason: '' } } });

test('weights the votes', () => {
  const out = consensusApi.evaluate({ pool: { id: 'p', running: 2, booting: 0, min: 0, max: 50 }, votes: [vote(2, 1), vote(8, 2)], now: 0, settings: '' });
  assert.equal(out.desired, 6);
});
