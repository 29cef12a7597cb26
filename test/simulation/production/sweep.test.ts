/**
 * The production-code simulator in CI: the real 2PC driver, runtime, TakeoverService and
 * PartitionOwnership of three replicas, and the participant SDK's 2PC driver for every
 * participant, on fake time over a simulated decision log, participant logs and Kafka. A
 * small sweep under every fault must keep the safety invariants and finish every transaction
 * after healing; a seed replays exactly; and three deliberate bugs in the code around the
 * cores are caught (mutants.ts), while the same seeds without the bug are clean.
 */
import { describe, expect, it } from 'vitest';
import { runProdSeed, sweepProd } from './prod-run';
import { DEFAULT_FAULTS, FAILING_WRITES_ONLY } from './prod-world';

describe('production 2pc coordinator under simulation', () => {
  it('keeps agreement, validity, durability and a stable logged decision under every fault, and finishes everything once they stop', async () => {
    const summary = await sweepProd(1, 60, { steps: 3000, faults: DEFAULT_FAULTS });
    // Safety after every step, and liveness (every transaction decided and completed within the bound after healing).
    expect(summary.failures.map((f) => `seed ${f.seed} ${f.violation.invariant}: ${f.violation.detail}`)).toEqual([]);
    expect(summary.transactions).toBeGreaterThan(2000);
    // The faults did happen.
    expect(summary.figures.failed).toBeGreaterThan(0);
    expect(summary.figures.ambiguous).toBeGreaterThan(0);
    expect(summary.figures.dropped).toBeGreaterThan(0);
    expect(summary.figures.redelivered).toBeGreaterThan(0);
    expect(summary.figures.replicaStarts).toBeGreaterThan(3 * 60);
  });

  it('is clean on the mutants\' seeds without a mutant (failing log writes, steady cluster)', async () => {
    const summary = await sweepProd(1, 6, { steps: 2000, faults: FAILING_WRITES_ONLY });
    expect(summary.failures.map((f) => `seed ${f.seed} ${f.violation.invariant}: ${f.violation.detail}`)).toEqual([]);
    expect(summary.figures.failed).toBeGreaterThan(100);
  });

  it('replays one seed exactly', async () => {
    const first = await runProdSeed(7, { steps: 1500, transcript: true });
    const second = await runProdSeed(7, { steps: 1500, transcript: true });
    expect(second.transcript).toEqual(first.transcript);
    expect(second.figures).toEqual(first.figures);
    expect({ ...second, transcript: [] }).toEqual({ ...first, transcript: [] });
    expect(first.transcript.length).toBeGreaterThan(500);
  });

  it('catches a driver that sends a step before its log write is durable', async () => {
    const summary = await sweepProd(1, 6, { steps: 2000, faults: FAILING_WRITES_ONLY, mutant: 'send-before-persist' });
    expect(summary.failures.some((f) => f.violation.invariant === 'durability')).toBe(true);
  });

  it('catches a runtime that drops a failed step instead of retrying it', async () => {
    const summary = await sweepProd(1, 6, { steps: 2000, faults: FAILING_WRITES_ONLY, mutant: 'drop-failed-step' });
    expect(summary.failures.some((f) => f.violation.invariant === 'termination')).toBe(true);
  });

  it('catches a participant SDK driver that replies before its step has committed', async () => {
    const summary = await sweepProd(1, 6, { steps: 2000, faults: FAILING_WRITES_ONLY, mutant: 'participant-reply-before-commit' });
    expect(summary.failures.some((f) => f.violation.invariant === 'validity' || f.violation.invariant === 'tcConsistent')).toBe(true);
  });
});
