/**
 * The participant's durable log, one row per transaction in the service's own database.
 * Every protocol step for a transaction runs inside one database transaction that holds the
 * row lock, so the service's handler writes and the row change commit together: prepared
 * work is durable exactly when the row says `prepared`, and a commit or abort is applied
 * exactly when the row says so.
 */
import type { Pool, PoolClient } from 'pg';
import type { RmState } from '../protocols/two-phase/participant';
import type { LoggedRmState } from './participant-sdk.types';

export const PARTICIPANT_LOG_TABLE = 'txn_participant_log';

// A fixed key so that services starting at the same moment do not race on CREATE TABLE.
const SCHEMA_LOCK_KEY = 0x74786e70;

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ${PARTICIPANT_LOG_TABLE} (
  participant   text        NOT NULL,
  txn_id        text        NOT NULL,
  state         text        NOT NULL CHECK (state IN ('working', 'prepared', 'committed', 'aborted')),
  epoch         integer     NOT NULL DEFAULT 0,
  payload       jsonb,
  reason        text,
  trace_context text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (participant, txn_id)
);
CREATE INDEX IF NOT EXISTS ${PARTICIPANT_LOG_TABLE}_in_doubt
  ON ${PARTICIPANT_LOG_TABLE} (participant) WHERE state = 'prepared';
`;

export interface LogRow {
  readonly txnId: string;
  /** `working` only for a row created by this very step; it is never committed. */
  readonly rmState: Extract<RmState, 'working'> | LoggedRmState;
  readonly epoch: number;
  readonly payload: unknown;
  readonly reason: string | null;
  readonly traceContext: string | null;
}

export type LogRowChange = Partial<Pick<LogRow, 'epoch' | 'payload' | 'reason' | 'traceContext'>> & {
  readonly rmState?: LoggedRmState;
};

/** A transaction's row, locked for the duration of one protocol step. */
export interface LockedLogRow {
  readonly row: LogRow;
  /** The service's view of the same database transaction; handlers get it as `ctx.db`. */
  readonly client: PoolClient;
  update(change: LogRowChange): Promise<void>;
}

/** The port the driver needs; the Postgres adapter is below, tests may supply another. */
export interface ParticipantLog {
  /**
   * Runs `work` with the transaction's row locked (a `working` row if there was none) and
   * commits if the row was changed into a durable state, otherwise rolls back. A throw
   * from `work` rolls everything back and is rethrown.
   */
  withLockedRow<T>(txnId: string, work: (locked: LockedLogRow) => Promise<T>): Promise<T>;
  /** Transactions prepared here whose outcome this participant has not learned yet. */
  findInDoubt(): Promise<string[]>;
}

interface RawRow {
  txn_id: string;
  state: LogRow['rmState'];
  epoch: number;
  payload: unknown;
  reason: string | null;
  trace_context: string | null;
}

export class PostgresParticipantLog implements ParticipantLog {
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

  async withLockedRow<T>(txnId: string, work: (locked: LockedLogRow) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      // The placeholder gives a transaction never seen before a row to lock; it is rolled
      // back unless the step moves it into a durable state.
      await client.query(
        `INSERT INTO ${PARTICIPANT_LOG_TABLE} (participant, txn_id, state) VALUES ($1, $2, 'working') ON CONFLICT DO NOTHING`,
        [this.participant, txnId],
      );
      const selected = await client.query<RawRow>(
        `SELECT txn_id, state, epoch, payload, reason, trace_context FROM ${PARTICIPANT_LOG_TABLE}
          WHERE participant = $1 AND txn_id = $2 FOR UPDATE`,
        [this.participant, txnId],
      );
      let current = toLogRow(selected.rows[0]);
      let changed = false;
      const locked: LockedLogRow = {
        get row() {
          return current;
        },
        client,
        update: async (change) => {
          current = { ...current, ...change };
          changed = true;
          await client.query(
            `UPDATE ${PARTICIPANT_LOG_TABLE}
                SET state = $3, epoch = $4, payload = $5::jsonb, reason = $6, trace_context = $7, updated_at = now()
              WHERE participant = $1 AND txn_id = $2`,
            [this.participant, txnId, current.rmState, current.epoch, JSON.stringify(current.payload ?? null), current.reason, current.traceContext],
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
      `SELECT txn_id FROM ${PARTICIPANT_LOG_TABLE} WHERE participant = $1 AND state = 'prepared' ORDER BY created_at`,
      [this.participant],
    );
    return result.rows.map((row) => row.txn_id);
  }
}

function toLogRow(raw: RawRow): LogRow {
  return {
    txnId: raw.txn_id,
    rmState: raw.state,
    epoch: raw.epoch,
    payload: raw.payload,
    reason: raw.reason,
    traceContext: raw.trace_context,
  };
}
