/**
 * The participant's durable log for Paxos Commit transactions, one row per transaction in the
 * service's own database, beside the two-phase commit log. A Paxos Commit row also keeps the
 * transaction's membership and leader, which a participant in doubt needs after a restart to
 * know whom to ask. As in the two-phase log, every step runs in one database transaction that
 * holds the row lock, so the service's handler writes and the row change commit together.
 */
import type { Membership } from '../protocols/paxos-commit/messages';
import type { RmState } from '../protocols/paxos-commit/participant';
import { LockedRowOf, LogRowChangeOf, LogTable, ParticipantLogStore, RowLockingLog } from './participant-log-store';
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

export type PaxosLogRowChange = LogRowChangeOf<PaxosLogRow>;

export type LockedPaxosLogRow = LockedRowOf<PaxosLogRow>;

/** The port the Paxos Commit participant driver needs. */
export interface PaxosCommitParticipantLog extends RowLockingLog<PaxosLogRow> {
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

const TABLE: LogTable<PaxosLogRow, RawRow> = {
  name: PAXOS_COMMIT_LOG_TABLE,
  schemaLockKey: SCHEMA_LOCK_KEY,
  schemaSql: SCHEMA_SQL,
  columns: 'txn_id, state, membership, leader, payload, reason, trace_context',
  inDoubt: "state = 'prepared'",
  assignments: 'state = $3, membership = $4::jsonb, leader = $5, payload = $6::jsonb, reason = $7, trace_context = $8',
  values: (row) => [
    row.rmState,
    row.membership ? JSON.stringify(row.membership) : null,
    row.leader,
    JSON.stringify(row.payload ?? null),
    row.reason,
    row.traceContext,
  ],
  toRow,
};

export class PostgresPaxosCommitLog extends ParticipantLogStore<PaxosLogRow, RawRow> implements PaxosCommitParticipantLog {
  protected readonly table = TABLE;

  findInDoubt(): Promise<string[]> {
    return this.inDoubtTxnIds();
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
