// The CI-size fuzz: every target's contract on a few hundred structure-aware, mutated inputs from a fixed seed,
// and on every default cap at and just over its limit. `npm run fuzz` runs the same targets a million times each.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CI_SEED, runOne, targetProperty } from './harness.js';
import { FUZZ_TARGETS } from './targets.js';

describe.each(FUZZ_TARGETS.map((t) => [t.name, t] as const))('fuzz target %s', (_name, target) => {
  it(`keeps its contract on ${target.ciRuns} generated and mutated inputs`, () => {
    fc.assert(targetProperty(target), { seed: CI_SEED, numRuns: target.ciRuns });
  });

  // Whole-cap documents (150 000 elements, 3 MB) are left to `npm run fuzz`, which also times them.
  const probes = (target.capProbes?.() ?? []).filter((p) => !p.heavy);
  if (probes.length === 0) return;
  it('keeps its contract at and just over every default cap', () => {
    for (const probe of probes) {
      const outcome = runOne(target, probe.input);
      expect(outcome.kind === 'pass' ? 'pass' : `${outcome.kind}: ${outcome.message}`, probe.name).toBe('pass');
    }
  });
});
