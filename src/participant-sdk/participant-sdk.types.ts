/**
 * The public vocabulary of the participant SDK: what a service hands to
 * `TransactionParticipant` and what its handlers receive.
 */
import type { PoolClient } from 'pg';

/**
 * What every handler receives. `db` is a client inside the same database transaction that
 * changes this participant's log row, so the service's writes and the log change commit (or
 * roll back) together: the handler must not commit, roll back or release it.
 */
export interface TransactionContext<P = unknown> {
  readonly txnId: string;
  /** The payload the coordinator sent with PREPARE (kept in the participant log for commit and abort). */
  readonly payload: P;
  readonly db: PoolClient;
}

export type PrepareVerdict = { readonly vote: 'YES' } | { readonly vote: 'NO'; readonly reason: string };

export interface ParticipantHandlers<P = unknown> {
  /**
   * Does the work of phase one and votes. YES means the work is durable and can be committed
   * or undone later; it commits with the log row before the vote leaves. A NO vote, or a
   * throw (which votes NO with the error message), rolls back everything the handler wrote.
   * A throw that carries a Postgres code for "the database could do no work" (connection loss
   * 08xxx, out of resources 53xxx, shutdown 57P01-57P03, serialization failure 40001, deadlock
   * 40P01) is no verdict: the step is rolled back and prepared again after a backoff.
   */
  prepare(ctx: TransactionContext<P>): Promise<PrepareVerdict>;
  /** Makes prepared work final. Runs at most once per transaction; a throw is retried later. */
  commit(ctx: TransactionContext<P>): Promise<void>;
  /** Undoes prepared work. Runs at most once, and only for a transaction this participant prepared. */
  abort(ctx: TransactionContext<P>): Promise<void>;
  /**
   * 3pc only, optional: every participant voted yes and the transaction will commit unless
   * everyone fails. Runs at most once, inside the database transaction that records it; a
   * throw is retried later. Nothing may be made final here: commit still follows.
   */
  preCommit?(ctx: TransactionContext<P>): Promise<void>;
}

export interface ParticipantLogger {
  debug?(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface TransactionParticipantOptions<P = unknown> {
  /** Participant name, as transactions name it: lower case letters, digits, `-` and `_`. */
  readonly name: string;
  readonly brokers: readonly string[];
  /** Prefix of every topic; defaults to `txn`. */
  readonly topicPrefix?: string;
  /** The service's own Postgres database; the SDK keeps `txn_participant_log` in it. */
  readonly databaseUrl: string;
  readonly handlers: ParticipantHandlers<P>;
  /** How often the participant announces itself; defaults to 1000. */
  readonly announceIntervalMs?: number;
  /** How often an in-doubt participant asks the coordinator for the outcome; defaults to 1000. */
  readonly queryIntervalMs?: number;
  /** Kafka consumer group session timeout; defaults to 10000. */
  readonly sessionTimeoutMs?: number;
  /** Partitions for topics this participant creates when they are missing; defaults to 6. */
  readonly topicPartitions?: number;
  /** How many partitions of its topic are handled at once; defaults to 4. */
  readonly partitionsConsumedConcurrently?: number;
  /** Size of the Postgres connection pool; defaults to 10. */
  readonly poolSize?: number;
  /**
   * 3pc: the bound on message delay and processing the protocol assumes, added to every wait
   * for the coordinator before it counts as crashed; defaults to 1000.
   */
  readonly terminationGraceMs?: number;
  /** 3pc: how long a recovery coordinator waits for its peers' answers before asking the failure detector; defaults to 1000. */
  readonly collectTimeoutMs?: number;
  /** How long `start()` waits for the consumer to join its group; defaults to 60000. */
  readonly startTimeoutMs?: number;
  readonly logger?: ParticipantLogger;
}

/** The states a participant log row can hold (the RM states of TwoPhase.tla that are durable). */
export type LoggedRmState = 'prepared' | 'committed' | 'aborted';
