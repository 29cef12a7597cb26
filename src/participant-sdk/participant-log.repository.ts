/**
 * The participant's durable log, one row per transaction in the service's own database.
 * Every protocol step for a transaction runs inside one database transaction that holds the
 * row lock, so the service's handler writes and the row change commit together: prepared
 * work is durable exactly when the row says `prepared`, and a commit or abort is applied
 * exactly when the row says so.
 */
import type { RmState } from '../protocols/two-phase/participant';
import { LockedRowOf, LogRowChangeOf, LogTable, ParticipantLogStore, RowLockingLog } from './participant-log-store';
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

export type LogRowChange = LogRowChangeOf<LogRow>;

export type LockedLogRow = LockedRowOf<LogRow>;

/** The port the driver needs; the Postgres adapter is below, tests may supply another. */
export interface ParticipantLog extends RowLockingLog<LogRow> {
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

const TABLE: LogTable<LogRow, RawRow> = {
  name: PARTICIPANT_LOG_TABLE,
  schemaLockKey: SCHEMA_LOCK_KEY,
  schemaSql: SCHEMA_SQL,
  columns: 'txn_id, state, epoch, payload, reason, trace_context',
  inDoubt: "state = 'prepared'",
  assignments: 'state = $3, epoch = $4, payload = $5::jsonb, reason = $6, trace_context = $7',
  values: (row) => [row.rmState, row.epoch, JSON.stringify(row.payload ?? null), row.reason, row.traceContext],
  toRow: toLogRow,
};

export class PostgresParticipantLog extends ParticipantLogStore<LogRow, RawRow> implements ParticipantLog {
  protected readonly table = TABLE;

  findInDoubt(): Promise<string[]> {
    return this.inDoubtTxnIds();
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
