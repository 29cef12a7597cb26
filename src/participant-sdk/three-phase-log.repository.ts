/**
 * The participant's durable log for three-phase commit, one row per transaction in the
 * service's own database, next to the 2PC log. 3PC needs more than 2PC keeps: the ordered
 * list of participants (a restarted participant asks them all, and they rank recovery
 * coordinators), the pre-committed state, and the highest termination epoch answered. As in
 * the 2PC log, each protocol step runs in one database transaction holding the row lock, so
 * the service's handler writes and the row change commit together before any reply leaves.
 */
import type { Pool, PoolClient } from 'pg';
import type { Epoch } from '../protocols/three-phase/messages';

export const THREE_PHASE_LOG_TABLE = 'txn_participant_3pc_log';

// Its own key, so that it never waits on the 2PC log's schema lock or a service's.
const SCHEMA_LOCK_KEY = 0x74783370;

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ${THREE_PHASE_LOG_TABLE} (
  participant    text        NOT NULL,
  txn_id         text        NOT NULL,
  state          text        NOT NULL CHECK (state IN ('working', 'prepared', 'precommitted', 'committed', 'aborted')),
  epoch          integer     NOT NULL DEFAULT 0,
  recovery_epoch jsonb,
  participants   jsonb,
  payload        jsonb,
  reason         text,
  trace_context  text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (participant, txn_id)
);
CREATE INDEX IF NOT EXISTS ${THREE_PHASE_LOG_TABLE}_in_doubt
  ON ${THREE_PHASE_LOG_TABLE} (participant) WHERE state IN ('prepared', 'precommitted');
`;

/** `prepared` is 3PC's uncertain: voted yes, outcome unknown. */
export type ThreePhaseLoggedState = 'prepared' | 'precommitted' | 'committed' | 'aborted';

export interface ThreePhaseRow {
  readonly txnId: string;
  /** `working` only for a row created by this very step; it is never committed. */
  readonly rmState: 'working' | ThreePhaseLoggedState;
  /** The highest owner epoch of the coordinator seen in an accepted order (fencing). */
  readonly epoch: number;
  /** The highest termination epoch this participant answered; informational after a restart. */
  readonly recoveryEpoch: Epoch | null;
  readonly participants: readonly string[] | null;
  readonly payload: unknown;
  readonly reason: string | null;
  readonly traceContext: string | null;
}

export type ThreePhaseRowChange = Partial<Omit<ThreePhaseRow, 'txnId' | 'rmState'>> & { readonly rmState?: ThreePhaseLoggedState };

export interface LockedThreePhaseRow {
  readonly row: ThreePhaseRow;
  /** The service's view of the same database transaction; handlers get it as `ctx.db`. */
  readonly client: PoolClient;
  update(change: ThreePhaseRowChange): Promise<void>;
}

/** The port the 3PC driver needs; the Postgres adapter is below, tests may supply another. */
export interface ThreePhaseLog {
  /** Runs `work` with the row locked; commits only if the row moved into a durable state. */
  withLockedRow<T>(txnId: string, work: (locked: LockedThreePhaseRow) => Promise<T>): Promise<T>;
  /** Every transaction this participant voted yes in and has no outcome for yet, with its row. */
  findInDoubt(): Promise<ThreePhaseRow[]>;
}

interface RawRow {
  txn_id: string;
  state: ThreePhaseRow['rmState'];
  epoch: number;
  recovery_epoch: Epoch | null;
  participants: string[] | null;
  payload: unknown;
  reason: string | null;
  trace_context: string | null;
}

const COLUMNS = 'txn_id, state, epoch, recovery_epoch, participants, payload, reason, trace_context';

export class PostgresThreePhaseLog implements ThreePhaseLog {
  constructor(
    private readonly pool: Pool,
    private readonly participant: string,
  ) {}

  async ensureSchema(): Promise<void> {
    await this.inTransaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
      await client.query(SCHEMA_SQL);
    });
  }

  withLockedRow<T>(txnId: string, work: (locked: LockedThreePhaseRow) => Promise<T>): Promise<T> {
    return this.inTransaction(async (client, finish) => {
      // The placeholder gives a transaction never seen before a row to lock; it is rolled
      // back unless the step moves it into a durable state.
      await client.query(`INSERT INTO ${THREE_PHASE_LOG_TABLE} (participant, txn_id, state) VALUES ($1, $2, 'working') ON CONFLICT DO NOTHING`, [
        this.participant,
        txnId,
      ]);
      const selected = await client.query<RawRow>(`SELECT ${COLUMNS} FROM ${THREE_PHASE_LOG_TABLE} WHERE participant = $1 AND txn_id = $2 FOR UPDATE`, [
        this.participant,
        txnId,
      ]);
      let current = toRow(selected.rows[0]);
      let changed = false;
      const locked: LockedThreePhaseRow = {
        get row() {
          return current;
        },
        client,
        update: async (change) => {
          current = { ...current, ...change };
          changed = true;
          await client.query(
            `UPDATE ${THREE_PHASE_LOG_TABLE}
                SET state = $3, epoch = $4, recovery_epoch = $5::jsonb, participants = $6::jsonb, payload = $7::jsonb,
                    reason = $8, trace_context = $9, updated_at = now()
              WHERE participant = $1 AND txn_id = $2`,
            [
              this.participant,
              txnId,
              current.rmState,
              current.epoch,
              JSON.stringify(current.recoveryEpoch),
              JSON.stringify(current.participants),
              JSON.stringify(current.payload ?? null),
              current.reason,
              current.traceContext,
            ],
          );
        },
      };
      const result = await work(locked);
      finish(changed && current.rmState !== 'working');
      return result;
    });
  }

  async findInDoubt(): Promise<ThreePhaseRow[]> {
    const result = await this.pool.query<RawRow>(
      `SELECT ${COLUMNS} FROM ${THREE_PHASE_LOG_TABLE} WHERE participant = $1 AND state IN ('prepared', 'precommitted') ORDER BY created_at`,
      [this.participant],
    );
    return result.rows.map(toRow);
  }

  /** BEGIN ... COMMIT (or ROLLBACK when `finish(false)` was called or `work` threw). */
  private async inTransaction<T>(work: (client: PoolClient, finish: (commit: boolean) => void) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    let commit = true;
    try {
      await client.query('BEGIN');
      const result = await work(client, (yes) => (commit = yes));
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
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
}

function toRow(raw: RawRow): ThreePhaseRow {
  return {
    txnId: raw.txn_id,
    rmState: raw.state,
    epoch: raw.epoch,
    recoveryEpoch: raw.recovery_epoch,
    participants: raw.participants,
    payload: raw.payload,
    reason: raw.reason,
    traceContext: raw.trace_context,
  };
}
