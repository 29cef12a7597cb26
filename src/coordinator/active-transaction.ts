/**
 * What the 2PC driver keeps in memory for a transaction it is running: the core's state plus
 * the facts the core does not need but the wire does (payloads, epoch, trace context).
 */
import { CoordinatorState, initialCoordinatorState } from '../protocols/two-phase/coordinator';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { RunningTransaction, runningFromLog } from './protocol-driver.base';

export type ActiveTransaction = RunningTransaction<CoordinatorState>;

/** Rebuilds the core's view of a transaction from its log entry (used at start and on recovery). */
export function activeFromLog(txn: TransactionEntity): ActiveTransaction {
  const rms = txn.participants.map((p) => p.name);
  const base = initialCoordinatorState(txn.id, rms);
  const tmState = txn.decision === 'COMMIT' ? 'committed' : txn.decision === 'ABORT' ? 'aborted' : 'preparing';
  return runningFromLog(txn, '2pc', {
    ...base,
    tmState,
    tmPrepared: txn.participants.filter((p) => p.vote === 'YES').map((p) => p.name),
    acked: txn.participants.filter((p) => p.ackedAt !== null).map((p) => p.name),
    done: txn.completedAt !== null,
  });
}
