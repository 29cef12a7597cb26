/**
 * The 2PC storage mapping: how a decision-log entry reads as the TM records of
 * protocols/two-phase/coordinator.ts, so that a restarted or adopting driver rebuilds its
 * state through the core's own `restoreCoordinator`, exactly as the simulator does.
 */
import { CoordinatorState, TmRecord, restoreCoordinator } from '../../protocols/two-phase/coordinator';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { RunningTransaction, runningFromLog } from '../protocol-driver.base';

export type ActiveTransaction = RunningTransaction<CoordinatorState>;

export function tmRecordsOf(txn: TransactionEntity): TmRecord[] {
  const records: TmRecord[] = [];
  for (const p of txn.participants) {
    if (p.vote === 'YES') records.push({ type: 'vote', rm: p.name, vote: 'Prepared' });
    else if (p.vote === 'NO') records.push({ type: 'vote', rm: p.name, vote: 'Aborted', ...(p.voteReason ? { reason: p.voteReason } : {}) });
  }
  if (txn.decision) records.push({ type: 'decision', decision: txn.decision, reason: txn.decisionReason ?? '' });
  for (const p of txn.participants) if (p.ackedAt !== null) records.push({ type: 'ack', rm: p.name });
  if (txn.completedAt !== null) records.push({ type: 'complete' });
  return records;
}

/** Rebuilds the core's view of a transaction from its log entry (used at start and on recovery). */
export function activeFromLog(txn: TransactionEntity): ActiveTransaction {
  const state = restoreCoordinator(txn.id, txn.participants.map((p) => p.name), tmRecordsOf(txn));
  return runningFromLog(txn, '2pc', state);
}
