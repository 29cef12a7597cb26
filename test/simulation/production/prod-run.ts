/**
 * One production-code run per seed: clients create transactions on the replicas while
 * faults are on, until the step budget is spent; then faults stop (heal) and every
 * transaction in the log must be decided and completed (every participant acknowledged,
 * `markComplete`) within `livenessBoundMs` of simulated time. Everything, including the
 * runtime's retry jitter, is drawn from the seed, so a seed replays one run exactly.
 */
import { ProdFaults, DEFAULT_FAULTS, ProdViolation, ProdWorld } from './prod-world';
import { Mutant, applyMutant } from './mutants';
import { DriverFactory, twoPhaseDriver } from './sim-replica';
import { installSimTime } from './sim-time';

export interface ProdRunOptions {
  readonly steps: number;
  readonly transcript?: boolean;
  readonly livenessBoundMs?: number;
  readonly faults?: ProdFaults;
  readonly replicas?: number;
  readonly partitions?: number;
  readonly driver?: DriverFactory;
  /** A deliberate bug patched in for the run (mutants.ts). */
  readonly mutant?: Mutant;
}

export interface ProdRunResult {
  readonly seed: number;
  readonly steps: number;
  readonly transactions: number;
  readonly committed: number;
  readonly aborted: number;
  readonly simulatedMs: number;
  readonly violations: readonly ProdViolation[];
  readonly transcript: readonly string[];
  /** Counters that show the faults happened (failed writes, drops, ...). */
  readonly figures: Readonly<Record<string, number>>;
}

export const DEFAULT_LIVENESS_BOUND_MS = 20_000;

export async function runProdSeed(seed: number, options: ProdRunOptions): Promise<ProdRunResult> {
  const transcript = options.transcript ?? false;
  const lines: string[] = [];
  const clock = installSimTime(seed, (line) => transcript && lines.push(`${String(clock.now()).padStart(7)} ${line}`));
  const restore = options.mutant ? applyMutant(options.mutant) : () => undefined;
  try {
    const world = new ProdWorld(clock, {
      seed,
      replicas: options.replicas ?? 3,
      partitions: options.partitions ?? 6,
      rms: 4,
      faults: options.faults ?? DEFAULT_FAULTS,
      driver: options.driver ?? twoPhaseDriver,
      transcript,
    });
    const log = world.transcript;
    // Nest's loggers and the world's lines go to one transcript, in order.
    const merge = (): void => void log.push(...lines.splice(0));
    world.log(`seed ${seed}: ${world.replicas.length} replicas, ${world.kafka.partitionCount} partitions, 4 participants`);
    world.start();
    world.startChaos();
    world.startClients(60);
    while (world.steps < options.steps && (await world.step())) merge();
    world.heal();
    const bound = options.livenessBoundMs ?? DEFAULT_LIVENESS_BOUND_MS;
    const healedAt = clock.now();
    while (clock.now() < healedAt + bound) {
      if (world.steps % 64 === 0 && world.unfinished().length === 0) break;
      if (!(await world.step())) break;
      merge();
    }
    world.checkFinal(bound);
    merge();
    const rows = world.store.ids().map((id) => world.store.peek(id)!);
    return {
      seed,
      steps: world.steps,
      transactions: rows.length,
      committed: rows.filter((r) => r.decision === 'COMMIT').length,
      aborted: rows.filter((r) => r.decision === 'ABORT').length,
      simulatedMs: clock.now(),
      violations: world.violations,
      transcript: world.transcript,
      figures: { ...world.storageStats, ...world.kafka.stats, replicaStarts: world.replicas.reduce((n, r) => n + r.incarnation, 0) },
    };
  } finally {
    restore();
    clock.uninstall();
  }
}

export interface ProdSweepSummary {
  readonly protocol: string;
  seeds: number;
  steps: number;
  transactions: number;
  committed: number;
  aborted: number;
  wallMs: number;
  readonly failures: { seed: number; violation: ProdViolation }[];
  readonly figures: Record<string, number>;
}

export async function sweepProd(firstSeed: number, seeds: number, options: ProdRunOptions): Promise<ProdSweepSummary> {
  const started = performance.now();
  const summary: ProdSweepSummary = { protocol: '2pc', seeds: 0, steps: 0, transactions: 0, committed: 0, aborted: 0, wallMs: 0, failures: [], figures: {} };
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    const result = await runProdSeed(seed, options);
    summary.seeds++;
    summary.steps += result.steps;
    summary.transactions += result.transactions;
    summary.committed += result.committed;
    summary.aborted += result.aborted;
    for (const [k, v] of Object.entries(result.figures)) summary.figures[k] = (summary.figures[k] ?? 0) + v;
    for (const violation of result.violations) summary.failures.push({ seed, violation });
  }
  summary.wallMs = performance.now() - started;
  return summary;
}
