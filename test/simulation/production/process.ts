/**
 * One incarnation of a simulated process and the ports it reaches the world through. A
 * paused process stops: its storage calls, sends and runtime timers are held until it
 * resumes. A crashed incarnation is gone: whatever it still had in flight never comes back
 * (a write it had issued may have been applied, as with a real database). The globally faked
 * setTimeout/setInterval that TakeoverService arms cannot be held per process; what they
 * start is held at the ports instead, so a paused replica renews no lease and scans nothing.
 */
import { Clock, Timer } from '../../../src/runtime/ports';
import { CreateResult, DecisionLogRepository, NewTransaction, OutcomeCount, TransactionFilter, UnfinishedSummary } from '../../../src/decision-log/decision-log.repository';
import { TransactionEntity } from '../../../src/decision-log/transaction.entity';
import { Prng } from '../prng';

export class SimProcess {
  private state: 'up' | 'paused' | 'dead' = 'up';
  private held: (() => void)[] = [];

  constructor(readonly name: string) {}

  get up(): boolean {
    return this.state === 'up';
  }

  get paused(): boolean {
    return this.state === 'paused';
  }

  get dead(): boolean {
    return this.state === 'dead';
  }

  /** Resolves at once while up, when resumed while paused, never once dead. */
  gate(): Promise<void> | undefined {
    if (this.state === 'up') return undefined;
    return new Promise<void>((resolve) => {
      if (this.state === 'paused') this.held.push(resolve);
    });
  }

  /** Runs `fn` now, after the pause, or never. */
  whenUp(fn: () => void): void {
    if (this.state === 'up') fn();
    else if (this.state === 'paused') this.held.push(fn);
  }

  pause(): void {
    if (this.state === 'up') this.state = 'paused';
  }

  resume(): void {
    if (this.state !== 'paused') return;
    this.state = 'up';
    for (const fn of this.held.splice(0)) fn();
  }

  kill(): void {
    this.state = 'dead';
    this.held = [];
  }
}

/** The runtime's Clock port for one incarnation: fake monotonic time; timers held while paused. */
export function processClock(process: SimProcess): Clock {
  return {
    now: () => performance.now(),
    setTimer(afterMs: number, fire: () => void): Timer {
      let cancelled = false;
      const handle = setTimeout(() => process.whenUp(() => !cancelled && fire()), Math.max(0, afterMs));
      return {
        cancel: () => {
          cancelled = true;
          clearTimeout(handle);
        },
      };
    },
  };
}

export interface StorageFaults {
  /** The write (or read) fails before it applies. */
  readonly fail: number;
  /** The answer comes back after `slowMs`. */
  readonly slow: number;
  /** The write applies, then the connection drops: the caller sees an error. */
  readonly ambiguous: number;
  readonly slowMs: readonly [number, number];
}

export interface StorageStats {
  calls: number;
  failed: number;
  slow: number;
  ambiguous: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The decision log as one incarnation reaches it: the shared log behind a faulty connection. */
export class FaultyDecisionLog extends DecisionLogRepository {
  constructor(
    private readonly inner: DecisionLogRepository,
    private readonly process: SimProcess,
    private readonly rng: Prng,
    private readonly faults: () => StorageFaults | undefined,
    private readonly stats: StorageStats,
  ) {
    super();
  }

  createTransaction(txn: NewTransaction): Promise<CreateResult> {
    return this.call('createTransaction', true, () => this.inner.createTransaction(txn));
  }
  appendVote(txnId: string, rm: string, vote: 'YES' | 'NO', reason: string | undefined): Promise<void> {
    return this.call('appendVote', true, () => this.inner.appendVote(txnId, rm, vote, reason));
  }
  appendDecision(txnId: string, decision: 'COMMIT' | 'ABORT', reason: string): Promise<'COMMIT' | 'ABORT'> {
    return this.call('appendDecision', true, () => this.inner.appendDecision(txnId, decision, reason));
  }
  appendAck(txnId: string, rm: string): Promise<void> {
    return this.call('appendAck', true, () => this.inner.appendAck(txnId, rm));
  }
  appendPreCommit(txnId: string, epoch: number): Promise<boolean> {
    return this.call('appendPreCommit', true, () => this.inner.appendPreCommit(txnId, epoch));
  }
  appendPreCommitAck(txnId: string, rm: string): Promise<void> {
    return this.call('appendPreCommitAck', true, () => this.inner.appendPreCommitAck(txnId, rm));
  }
  appendDecisionAtEpoch(txnId: string, epoch: number, decision: 'COMMIT' | 'ABORT', reason: string): Promise<'COMMIT' | 'ABORT' | null> {
    return this.call('appendDecisionAtEpoch', true, () => this.inner.appendDecisionAtEpoch(txnId, epoch, decision, reason));
  }
  markComplete(txnId: string): Promise<void> {
    return this.call('markComplete', true, () => this.inner.markComplete(txnId));
  }
  findById(id: string): Promise<TransactionEntity | null> {
    return this.call('findById', false, () => this.inner.findById(id));
  }
  list(filter: TransactionFilter): Promise<TransactionEntity[]> {
    return this.call('list', false, () => this.inner.list(filter));
  }
  findUnfinished(limit?: number): Promise<TransactionEntity[]> {
    return this.call('findUnfinished', false, () => this.inner.findUnfinished(limit));
  }
  unfinishedSummary(): Promise<UnfinishedSummary[]> {
    return this.call('unfinishedSummary', false, () => this.inner.unfinishedSummary());
  }
  countByProtocolAndState(): Promise<OutcomeCount[]> {
    return this.call('countByProtocolAndState', false, () => this.inner.countByProtocolAndState());
  }
  renewLeases(ownerId: string, partitions: readonly number[], leaseMs: number): Promise<number> {
    return this.call('renewLeases', true, () => this.inner.renewLeases(ownerId, partitions, leaseMs));
  }
  now(): Promise<number> {
    return this.call('now', false, () => this.inner.now());
  }
  findUnfinishedIn(partitions: readonly number[]): Promise<TransactionEntity[]> {
    return this.call('findUnfinishedIn', false, () => this.inner.findUnfinishedIn(partitions));
  }
  takeOver(txnId: string, from: { ownerId: string; epoch: number }, to: string, leaseMs: number): Promise<TransactionEntity | null> {
    return this.call('takeOver', true, () => this.inner.takeOver(txnId, from, to, leaseMs));
  }

  private async call<T>(op: string, write: boolean, apply: () => Promise<T>): Promise<T> {
    await this.process.gate();
    this.stats.calls++;
    const faults = this.faults();
    const kind = faults ? this.draw(faults, write) : 'ok';
    const latencyMs = kind === 'slow' ? this.rng.int(faults!.slowMs[0], faults!.slowMs[1]) : this.rng.int(0, 2);
    if (kind === 'fail') {
      this.stats.failed++;
      await sleep(latencyMs);
      await this.process.gate();
      throw new Error(`${op}: connection terminated unexpectedly (simulated)`);
    }
    // The database applies the statement now; the answer travels back afterwards.
    const result = await apply();
    await sleep(latencyMs);
    await this.process.gate();
    if (kind === 'ambiguous') {
      this.stats.ambiguous++;
      throw new Error(`${op}: connection lost after the commit (simulated)`);
    }
    if (kind === 'slow') this.stats.slow++;
    return result;
  }

  private draw(faults: StorageFaults, write: boolean): 'ok' | 'fail' | 'slow' | 'ambiguous' {
    const x = this.rng.next();
    if (x < faults.fail) return 'fail';
    if (x < faults.fail + faults.slow) return 'slow';
    if (write && x < faults.fail + faults.slow + faults.ambiguous) return 'ambiguous';
    return 'ok';
  }
}
