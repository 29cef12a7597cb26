/**
 * One simulated run per seed: random transactions under the protocol's fault profile until
 * the step budget is spent, then every fault stops, the network heals, crashed nodes
 * restart, and every transaction the protocol promises to finish must finish within a bound
 * of simulated time. Everything is derived from the seed.
 */
import { ProtocolAdapter, ProtocolName } from './adapter';
import { FaultProfile, faultsFor } from './faults';
import { Prng } from './prng';
import { PaxosCommitAdapter } from './protocols/paxos-commit.adapter';
import { ThreePhaseAdapter } from './protocols/three-phase.adapter';
import { TwoPhaseAdapter } from './protocols/two-phase.adapter';
import { Violation } from './tracker';
import { World } from './world';

export interface RunOptions {
  readonly steps: number;
  readonly partitions: boolean;
  readonly transcript?: boolean;
  /** Simulated time after healing within which every promised transaction must finish. */
  readonly livenessBoundMs?: number;
  /** Replaces the protocol's adapter: tests use it to prove the checks can fail. */
  readonly adapter?: (seed: number) => ProtocolAdapter;
}

export interface RunResult {
  readonly protocol: ProtocolName;
  readonly seed: number;
  readonly steps: number;
  readonly transactions: number;
  readonly committed: number;
  readonly aborted: number;
  /** Unfinished, and the protocol is allowed to block there (3PC's total failure). */
  readonly blocked: number;
  readonly violations: readonly Violation[];
  readonly transcript: readonly string[];
  readonly setup: string;
}

/** Per-seed protocol variations come from their own stream, so they do not shift the run's. */
export function adapterFor(protocol: ProtocolName, seed: number): { adapter: ProtocolAdapter; setup: string } {
  const setup = new Prng(seed ^ 0x5eed5eed);
  switch (protocol) {
    case '2pc':
      return { adapter: new TwoPhaseAdapter(), setup: '1 TM, 4 RMs' };
    case '3pc':
      return { adapter: new ThreePhaseAdapter(), setup: '1 TM, 4 RMs' };
    case 'paxos-commit': {
      const f = setup.chance(0.7) ? 1 : 2;
      const phase2aFanout = setup.chance(0.5) ? 'majority' : 'all';
      const phase2bToRms = setup.chance(0.5);
      const adapter = new PaxosCommitAdapter({ f, phase2aFanout, phase2bToRms });
      return { adapter, setup: `F=${f}, ${2 * f + 1} replicas, 4 RMs, phase2a to ${phase2aFanout}, phase2b to RMs: ${phase2bToRms}` };
    }
  }
}

export function runSeed(protocol: ProtocolName, seed: number, options: RunOptions, faults: FaultProfile = faultsFor(protocol, options.partitions)): RunResult {
  const { adapter, setup } = options.adapter ? { adapter: options.adapter(seed), setup: 'custom adapter' } : adapterFor(protocol, seed);
  const world = new World(adapter, { seed, faults, transcript: options.transcript, yesVote: 0.85, leaderNoise: 0.15 });
  world.log(`seed ${seed}, ${protocol} (${setup}), faults ${JSON.stringify(faults)}`);
  if (faults.crashes || faults.partitions) world.startChaos();
  let nextBegin = 0;
  let count = 0;
  while (world.steps < options.steps) {
    // Client requests arrive on the simulated clock, a little ahead of it.
    while (nextBegin <= world.clock + 200) {
      world.beginAt(nextBegin, `t${++count}`, world.rng.subset(adapter.rmPool, 2));
      nextBegin += world.rng.int(10, 120);
    }
    if (!world.tick()) break;
  }
  world.log('--- faults stop; the network heals; crashed nodes restart ---');
  world.heal();
  const healedAt = world.clock;
  const bound = options.livenessBoundMs ?? 10_000;
  const holdsState = (rm: string, txnId: string) => adapter.hasState(rm, txnId) || world.host.durableKeys(rm).some((k) => k.txnId === txnId);
  const unfinished = () =>
    [...world.txns.values()].filter((t) => adapter.coordinatorPending(t.txnId) || !t.finished((rm) => holdsState(rm, t.txnId), adapter.everyRmFinishes));
  while (world.clock < healedAt + bound) {
    if (world.steps % 64 === 0 && unfinished().length === 0) break;
    if (!world.tick()) break;
  }
  let blocked = 0;
  for (const track of unfinished()) {
    if (adapter.mayBlock(track.txnId, track.rms, world.host)) blocked++;
    else if (!track.violated) {
      const coordinator = adapter.coordinatorPending(track.txnId) ? '; coordinator undecided' : '';
      const detail = `unfinished ${bound}ms after healing: ${track.rms.map((rm) => `${rm}=${track.rmState[rm] ?? 'none'}`).join(' ')}${coordinator}`;
      world.violate({ invariant: 'termination', txnId: track.txnId, detail, step: world.steps, at: world.clock });
    }
  }
  const outcomes = [...world.txns.values()].map((t) => t.outcome());
  return {
    protocol,
    seed,
    steps: world.steps,
    transactions: world.txns.size,
    committed: outcomes.filter((o) => o === 'COMMIT').length,
    aborted: outcomes.filter((o) => o === 'ABORT').length,
    blocked,
    violations: world.violations,
    transcript: world.transcript,
    setup,
  };
}

export interface SweepSummary {
  readonly protocol: ProtocolName;
  seeds: number;
  steps: number;
  transactions: number;
  committed: number;
  aborted: number;
  blocked: number;
  readonly failures: { seed: number; violation: Violation }[];
}

export function sweep(protocol: ProtocolName, firstSeed: number, seeds: number, options: RunOptions): SweepSummary {
  const summary: SweepSummary = { protocol, seeds: 0, steps: 0, transactions: 0, committed: 0, aborted: 0, blocked: 0, failures: [] };
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    const result = runSeed(protocol, seed, options);
    summary.seeds++;
    summary.steps += result.steps;
    summary.transactions += result.transactions;
    summary.committed += result.committed;
    summary.aborted += result.aborted;
    summary.blocked += result.blocked;
    for (const violation of result.violations) summary.failures.push({ seed, violation });
  }
  return summary;
}
