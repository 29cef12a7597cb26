/**
 * The participant's durable log for Paxos Commit transactions, one row per transaction in the
 * service's own database, beside the two-phase commit log. A Paxos Commit row also keeps the
 * transaction's membership and leader, which a participant in doubt needs after a restart to
 * know whom to ask. As in the two-phase log, every step runs in one database transaction that
 * holds the row lock, so the service's handler writes and the row change commit together.
 */
import type { Pool, PoolClient } from 'pg';
import type { Membership } from '../protocols/paxos-commit/messages';
import type { RmState } from '../protocols/paxos-commit/participant';
import type { LoggedRmState } from './participant-sdk.types';

export const PAXOS_COMMIT_LOG_TABLE = 'txn_paxos_commit_log';

// Distinct from the two-phase log's key, so both schemas can be created at once.
const SCHEMA_LOCK_KEY = 0x74786e71;

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ${PAXOS_COMMIT_LOG_TABLE} (
  participant   text        NOT NULL,
  txn_id        text        NOT NULL,
  state         text        NOT NULL CHECK (state IN ('working', 'prepared', 'committed', 'aborted')),
  membership    jsonb,
  leader        text,
  payload       jsonb,
  reason        text,
  trace_context text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (participant, txn_id)
);
CREATE INDEX IF NOT EXISTS ${PAXOS_COMMIT_LOG_TABLE}_in_doubt
  ON ${PAXOS_COMMIT_LOG_TABLE} (participant) WHERE state = 'prepared';
`;

export interface PaxosLogRow {
  readonly txnId: string;
  /** `working` only for a row created by this very step; it is never committed. */
  readonly rmState: Extract<RmState, 'working'> | LoggedRmState;
  readonly membership: Membership | null;
  readonly leader: string | null;
  readonly payload: unknown;
  readonly reason: string | null;
  readonly traceContext: string | null;
}

export type PaxosLogRowChange = Partial<Omit<PaxosLogRow, 'txnId' | 'rmState'>> & { readonly rmState?: LoggedRmState };

export interface LockedPaxosLogRow {
  readonly row: PaxosLogRow;
  /** The service's view of the same database transaction; handlers get it as `ctx.db`. */
  readonly client: PoolClient;
  update(change: PaxosLogRowChange): Promise<void>;
}

/** The port the Paxos Commit participant driver needs. */
export interface PaxosCommitParticipantLog {
  /** As ParticipantLog.withLockedRow: commits only if the row moved into a durable state. */
  withLockedRow<T>(txnId: string, work: (locked: LockedPaxosLogRow) => Promise<T>): Promise<T>;
  findInDoubt(): Promise<string[]>;
}

interface RawRow {
  txn_id: string;
  state: PaxosLogRow['rmState'];
  membership: Membership | null;
  leader: string | null;
  payload: unknown;
  reason: string | null;
  trace_context: string | null;
}

export class PostgresPaxosCommitLog implements PaxosCommitParticipantLog {
  constructor(
    private readonly pool: Pool,
    private readonly participant: string,
  ) {}

  async ensureSchema(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
      await client.query(SCHEMA_SQL);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async withLockedRow<T>(txnId: string, work: (locked: LockedPaxosLogRow) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      // A placeholder gives a transaction never seen before a row to lock; rolled back unless the step makes it durable.
      await client.query(`INSERT INTO ${PAXOS_COMMIT_LOG_TABLE} (participant, txn_id, state) VALUES ($1, $2, 'working') ON CONFLICT DO NOTHING`, [this.participant, txnId]);
      const selected = await client.query<RawRow>(
        `SELECT txn_id, state, membership, leader, payload, reason, trace_context FROM ${PAXOS_COMMIT_LOG_TABLE}
          WHERE participant = $1 AND txn_id = $2 FOR UPDATE`,
        [this.participant, txnId],
      );
      let current = toRow(selected.rows[0]);
      let changed = false;
      const locked: LockedPaxosLogRow = {
        get row() {
          return current;
        },
        client,
        update: async (change) => {
          current = { ...current, ...change };
          changed = true;
          await client.query(
            `UPDATE ${PAXOS_COMMIT_LOG_TABLE}
                SET state = $3, membership = $4::jsonb, leader = $5, payload = $6::jsonb, reason = $7, trace_context = $8, updated_at = now()
              WHERE participant = $1 AND txn_id = $2`,
            [
              this.participant,
              txnId,
              current.rmState,
              current.membership ? JSON.stringify(current.membership) : null,
              current.leader,
              JSON.stringify(current.payload ?? null),
              current.reason,
              current.traceContext,
            ],
          );
        },
      };
      const result = await work(locked);
      await client.query(changed && current.rmState !== 'working' ? 'COMMIT' : 'ROLLBACK');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      // A connection that cannot even roll back is not given back to the pool.
      client.release(broken ? true : undefined);
    }
  }

  async findInDoubt(): Promise<string[]> {
    const result = await this.pool.query<{ txn_id: string }>(
      `SELECT txn_id FROM ${PAXOS_COMMIT_LOG_TABLE} WHERE participant = $1 AND state = 'prepared' ORDER BY created_at`,
      [this.participant],
    );
    return result.rows.map((row) => row.txn_id);
  }
}

function toRow(raw: RawRow): PaxosLogRow {
  return {
    txnId: raw.txn_id,
    rmState: raw.state,
    membership: raw.membership,
    leader: raw.leader,
    payload: raw.payload,
    reason: raw.reason,
    traceContext: raw.trace_context,
  };
}
