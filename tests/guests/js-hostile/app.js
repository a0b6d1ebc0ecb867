// A JavaScript policy that misbehaves on request, by pool id, and behaves
// otherwise: each way is a case of tests/e2e/languages.rs.
import * as sw from './scalewise-policy/index.js';

export const strategyApi = sw.strategy({
  evaluate(input) {
    const how = input.pool.id;
    if (how === 'raise') throw new RangeError('out of patience');
    if (how === 'loop') for (;;) {}
    if (how === 'alloc') {
      const hoard = [];
      for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
    }
    if (how === 'shape') return { desired: 'three' };
    if (how === 'import') return globalThis.noSuchModule.evaluate();
    return { desired: input.pool.running, confidence: 1, reason: 'hostile: behaving' };
  },
});
