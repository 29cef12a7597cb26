/**
 * 3PC under the simulator: correct under crash failures with an accurate failure detector;
 * under partitions the simulator must find the split-brain the textbook predicts.
 */
import { describe, expect, it } from 'vitest';
import { sweep } from './run';

describe('3PC sweep', () => {
  it('keeps every invariant and finishes under crash faults only (300 seeds)', () => {
    const summary = sweep('3pc', 1, 300, { steps: 1500, partitions: false });
    expect(summary.failures.map(({ seed, violation }) => `seed ${seed}: ${violation.invariant} ${violation.detail}`)).toEqual([]);
    expect(summary.committed).toBeGreaterThan(summary.transactions / 20);
  });

  it('splits under partitions: some RMs commit while others abort, and the seed is reported', () => {
    const summary = sweep('3pc', 1, 100, { steps: 1500, partitions: true });
    const splits = summary.failures.filter(({ violation }) => violation.invariant === 'tcConsistent');
    expect(splits.length).toBeGreaterThan(0);
    // Only agreement breaks: validity and stability hold even here.
    expect(summary.failures.filter(({ violation }) => violation.invariant === 'validity' || violation.invariant === 'decisionStable')).toEqual([]);
    expect(splits[0].seed).toBeGreaterThanOrEqual(1);
  });
});
