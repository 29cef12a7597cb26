/**
 * The port through which the coordinator reaches its durable log. Each method is one
 * protocol fact; none returns before the fact is durable.
 */
import { TransactionEntity, TransactionState } from './transaction.entity';

export interface NewTransaction {
  readonly id: string;
  readonly protocol: string;
  readonly participants: readonly { readonly name: string; readonly payload: unknown }[];
  readonly timeoutMs: number;
  readonly idempotencyKey: string | null;
  readonly requestHash: string;
  readonly ownerId: string;
  readonly traceContext: string | null;
  readonly partition: number;
  readonly leaseMs: number;
}

export type CreateResult =
  | { readonly created: true; readonly transaction: TransactionEntity }
  | { readonly created: false; readonly transaction: TransactionEntity };

export interface TransactionFilter {
  readonly state?: TransactionState;
  readonly protocol?: string;
  readonly limit: number;
}

/** Unfinished transactions of one protocol, for the in-doubt gauges. */
export interface UnfinishedSummary {
  readonly protocol: string;
  readonly count: number;
  /** Age of the oldest one by the database's clock, which also stamped its creation. */
  readonly oldestAgeMs: number;
}

export interface OutcomeCount {
  readonly protocol: string;
  readonly state: TransactionState;
  readonly count: number;
}

export abstract class DecisionLogRepository {
  /** Logs a new transaction; with an idempotency key already used, returns the earlier one. */
  abstract createTransaction(txn: NewTransaction): Promise<CreateResult>;
  abstract appendVote(txnId: string, rm: string, vote: 'YES' | 'NO', reason: string | undefined): Promise<void>;
  /** Forces the decision; returns the decision the log holds (an earlier one wins). */
  abstract appendDecision(txnId: string, decision: 'COMMIT' | 'ABORT', reason: string): Promise<'COMMIT' | 'ABORT'>;
  abstract appendAck(txnId: string, rm: string): Promise<void>;
  /**
   * 3pc: forces the PreCommit record, but only while `epoch` still owns the transaction and
   * nothing is decided. False means a newer owner (or a decision) got there first, and the
   * caller must not send PreCommit.
   */
  abstract appendPreCommit(txnId: string, epoch: number): Promise<boolean>;
  /** 3pc: notes that `rm` acknowledged PreCommit; informational, nothing waits for it. */
  abstract appendPreCommitAck(txnId: string, rm: string): Promise<void>;
  /**
   * 3pc: forces the decision while `epoch` still owns the transaction. Returns the decision
   * the log holds (an earlier one wins, whoever wrote it), or null when a newer owner holds
   * the transaction and nothing is decided: the caller must then stop without sending.
   */
  abstract appendDecisionAtEpoch(txnId: string, epoch: number, decision: 'COMMIT' | 'ABORT', reason: string): Promise<'COMMIT' | 'ABORT' | null>;
  abstract markComplete(txnId: string): Promise<void>;
  abstract findById(id: string): Promise<TransactionEntity | null>;
  abstract list(filter: TransactionFilter): Promise<TransactionEntity[]>;
  /** Transactions not yet acknowledged by every participant, oldest first; all of them unless `limit`. */
  abstract findUnfinished(limit?: number): Promise<TransactionEntity[]>;
  /** Count and oldest age of the unfinished transactions, per protocol that has any. */
  abstract unfinishedSummary(): Promise<UnfinishedSummary[]>;
  /** How many transactions each protocol has in each state. */
  abstract countByProtocolAndState(): Promise<OutcomeCount[]>;
  /** Extends the owner's lease on its unfinished transactions in `partitions`. */
  abstract renewLeases(ownerId: string, partitions: readonly number[], leaseMs: number): Promise<number>;
  /** Unfinished transactions that live on `partitions`, oldest first. */
  abstract findUnfinishedIn(partitions: readonly number[]): Promise<TransactionEntity[]>;
  /**
   * The log's own clock (ms since the epoch). Leases are stamped by it, so a replica judges a
   * lease against this, never against its local clock.
   */
  abstract now(): Promise<number>;
  /**
   * Takes a transaction over from `from` at `epoch` once its lease has expired (or at once
   * when `from` is this replica's own earlier incarnation), raising the epoch. Returns the
   * transaction as now owned, or null when someone else moved first or the lease still runs.
   */
  abstract takeOver(txnId: string, from: { ownerId: string; epoch: number }, to: string, leaseMs: number): Promise<TransactionEntity | null>;
}
