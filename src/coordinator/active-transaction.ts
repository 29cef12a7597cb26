/**
 * What the driver keeps in memory for a transaction it is running: the core's state plus
 * the facts the core does not need but the wire does (payloads, epoch, trace context).
 */
import { CoordinatorState, initialCoordinatorState } from '../protocols/two-phase/coordinator';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { TransactionTrace } from './transaction-trace';

export interface ActiveTransaction {
  state: CoordinatorState;
  readonly protocol: '2pc';
  readonly payloads: ReadonlyMap<string, unknown>;
  readonly timeoutMs: number;
  readonly epoch: number;
  readonly partition: number;
  readonly traceContext: string | null;
  readonly startedAt: number;
  readonly timers: Map<string, NodeJS.Timeout>;
  readonly trace: TransactionTrace;
}

/** Rebuilds the core's view of a transaction from its log entry (used at start and on recovery). */
export function activeFromLog(txn: TransactionEntity): ActiveTransaction {
  const rms = txn.participants.map((p) => p.name);
  const base = initialCoordinatorState(txn.id, rms);
  const tmState = txn.decision === 'COMMIT' ? 'committed' : txn.decision === 'ABORT' ? 'aborted' : 'preparing';
  return {
    state: {
      ...base,
      tmState,
      tmPrepared: txn.participants.filter((p) => p.vote === 'YES').map((p) => p.name),
      acked: txn.participants.filter((p) => p.ackedAt !== null).map((p) => p.name),
      done: txn.completedAt !== null,
    },
    protocol: '2pc',
    payloads: new Map(txn.participants.map((p) => [p.name, p.payload])),
    timeoutMs: txn.timeoutMs,
    epoch: txn.epoch,
    partition: txn.partition,
    traceContext: txn.traceContext,
    startedAt: new Date(txn.createdAt).getTime(),
    timers: new Map(),
    trace: new TransactionTrace(txn.id, '2pc', txn.traceContext),
  };
}
