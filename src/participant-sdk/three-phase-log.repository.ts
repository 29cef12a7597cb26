/**
 * The participant's durable log for three-phase commit, one row per transaction in the
 * service's own database, next to the 2PC log. 3PC needs more than 2PC keeps: the ordered
 * list of participants (a restarted participant asks them all, and they rank recovery
 * coordinators), the pre-committed state, and the highest termination epoch answered. As in
 * the 2PC log, each protocol step runs in one database transaction holding the row lock, so
 * the service's handler writes and the row change commit together before any reply leaves.
 */
import type { Epoch } from '../protocols/three-phase/messages';
import { LockedRowOf, LogRowChangeOf, LogTable, ParticipantLogStore, RowLockingLog } from './participant-log-store';

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

export type ThreePhaseRowChange = LogRowChangeOf<ThreePhaseRow>;

export type LockedThreePhaseRow = LockedRowOf<ThreePhaseRow>;

/** The port the 3PC driver needs; the Postgres adapter is below, tests may supply another. */
export interface ThreePhaseLog extends RowLockingLog<ThreePhaseRow> {
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

const TABLE: LogTable<ThreePhaseRow, RawRow> = {
  name: THREE_PHASE_LOG_TABLE,
  schemaLockKey: SCHEMA_LOCK_KEY,
  schemaSql: SCHEMA_SQL,
  columns: 'txn_id, state, epoch, recovery_epoch, participants, payload, reason, trace_context',
  inDoubt: "state IN ('prepared', 'precommitted')",
  assignments:
    'state = $3, epoch = $4, recovery_epoch = $5::jsonb, participants = $6::jsonb, payload = $7::jsonb, reason = $8, trace_context = $9',
  values: (row) => [
    row.rmState,
    row.epoch,
    JSON.stringify(row.recoveryEpoch),
    JSON.stringify(row.participants),
    JSON.stringify(row.payload ?? null),
    row.reason,
    row.traceContext,
  ],
  toRow,
};

export class PostgresThreePhaseLog extends ParticipantLogStore<ThreePhaseRow, RawRow> implements ThreePhaseLog {
  protected readonly table = TABLE;

  findInDoubt(): Promise<ThreePhaseRow[]> {
    return this.inDoubtRows();
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
