/**
 * The bounded sweep CI runs: a few hundred seeds per protocol under every fault the protocol
 * is meant to survive. The big sweep is the same code behind `npm run sim`.
 */
import { describe, expect, it } from 'vitest';
import { SweepSummary, sweep } from './run';

const SEEDS = 300;
const STEPS = 1500;

function expectClean(summary: SweepSummary): void {
  const found = summary.failures.map(({ seed, violation }) => `seed ${seed}: ${violation.invariant} ${violation.txnId} ${violation.detail}`);
  expect(found).toEqual([]);
  // The sweep really exercised the protocol: many transactions, both outcomes.
  expect(summary.transactions).toBeGreaterThan(SEEDS * 10);
  expect(summary.committed).toBeGreaterThan(summary.transactions / 20);
  expect(summary.aborted).toBeGreaterThan(summary.transactions / 20);
}

describe('bounded sweep, every fault including partitions', () => {
  it(`2PC keeps every invariant and finishes after healing (${SEEDS} seeds)`, () => {
    expectClean(sweep('2pc', 1, SEEDS, { steps: STEPS, partitions: true }));
  });

  it(`Paxos Commit keeps every invariant and finishes after healing (${SEEDS} seeds)`, () => {
    expectClean(sweep('paxos-commit', 1, SEEDS, { steps: STEPS, partitions: true }));
  });
});
