// {{name}}: consensus. The mean of the proposals, weighted by each
// expert's weight times its confidence.
import * as sw from './scalewise-policy/index.js';

export const consensusApi = sw.consensus({
  settings: { round_up: sw.boolean({ default: false }) },
  evaluate(input, s) {
    let total = 0;
    let weight = 0;
    for (const vote of input.votes) {
      const p = sw.proposalOf(vote);
      if (p) {
        total += vote.weight * p.confidence * p.desired;
        weight += vote.weight * p.confidence;
      }
    }
    if (weight <= 0) throw new sw.Abstain('no expert proposed anything');
    const mean = total / weight;
    const desired = sw.clamp(input.pool, s.round_up ? Math.ceil(mean) : Math.round(mean));
    return { desired, confidence: 1, explanation: `weighted mean ${mean.toFixed(2)} of ${input.votes.length} votes` };
  },
});
