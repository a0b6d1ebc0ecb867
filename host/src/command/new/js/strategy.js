// {{name}}: a scaling strategy. Desired capacity is the newest sample of a
// metric divided by what one worker should carry.
//
// scalewise-policy/ is the kit at the contract version of the scalewise
// that wrote this project (the package @scalewise/policy).
import * as sw from './scalewise-policy/index.js';

export const strategyApi = sw.strategy({
  settings: {
    target_per_worker: sw.number(),
    metric: sw.string({ default: 'queue_depth' }),
  },
  validate(s) {
    if (!(s.target_per_worker > 0)) return `target_per_worker: must be a positive number, got ${s.target_per_worker}`;
  },
  evaluate(input, s) {
    const value = sw.last(sw.metric(input, s.metric));
    if (value === undefined) throw new sw.Abstain(`no samples for ${s.metric}`);
    const desired = sw.clamp(input.pool, Math.ceil(value / s.target_per_worker));
    return { desired, confidence: 1, reason: `${s.metric} ${value} / ${s.target_per_worker} per worker` };
  },
});
