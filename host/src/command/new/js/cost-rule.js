// {{name}}: a cost rule. Clamps a proposed capacity to what an hourly
// spending cap pays for, at the pool's instance kind's on-demand price.
import * as sw from './scalewise-policy/index.js';

export const costRuleApi = sw.costRule({
  settings: { max_hourly: sw.number({ min: 0 }) },
  evaluate(input, s) {
    if (!input.kind) throw new sw.Abstain('the pool names no instance kind');
    const kind = input.catalog.find((k) => k.name === input.kind);
    if (!kind) throw new sw.Abstain(`${input.kind} is not in the catalog`);
    const price = kind.onDemandHourly;
    const cost = price * input.proposed;
    if (cost <= s.max_hourly) return { verdict: sw.allow(), costPerHour: cost, reason: `${input.proposed} x ${input.kind} costs ${cost}/h` };
    const affordable = price > 0 ? Math.floor(s.max_hourly / price) : input.proposed;
    return { verdict: sw.clampTo(affordable), costPerHour: price * affordable, reason: `${cost}/h is over ${s.max_hourly}/h: ${affordable}` };
  },
});
