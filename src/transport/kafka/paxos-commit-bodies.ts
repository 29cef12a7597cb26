/**
 * Bodies of the Paxos Commit messages (docs/protocol.md, "Paxos Commit") and their strict
 * validation. They carry the fields of the core's messages (protocols/paxos-commit/messages.ts)
 * one to one, so translating between the wire and a core is a matter of copying fields.
 */
export interface BallotBody {
  /** 0 is the participant's own ballot (with `replica` ""); a leader uses rounds from 1. */
  readonly round: number;
  readonly replica: string;
}

export interface MembershipBody {
  /** The transaction's participants: one Paxos instance each. */
  readonly rms: readonly string[];
  /** The acceptor replicas, 2F+1 of them. */
  readonly acceptors: readonly string[];
}

export interface InstanceValueBody {
  readonly rm: string;
  readonly value: 'Prepared' | 'Aborted';
  /** Why a participant voted Aborted; informational, passed on to the decision's reason. */
  readonly reason?: string;
}

export interface InstanceReportBody {
  readonly rm: string;
  readonly maxVBal?: BallotBody;
  readonly maxVal?: 'Prepared' | 'Aborted';
}

/** PREPARE of a paxos-commit transaction: the 2pc fields plus where to send the vote. */
export interface PaxosPrepareBody {
  readonly payload: unknown;
  readonly timeoutMs: number;
  readonly membership: MembershipBody;
  readonly leader: string;
}

export interface Phase2aBody {
  readonly membership: MembershipBody;
  readonly ballot: BallotBody;
  /** The leader that should hear the phase 2b. */
  readonly leader: string;
  readonly entries: readonly InstanceValueBody[];
}

/** The acceptor is the envelope's `from`. */
export interface Phase2bBody {
  readonly ballot: BallotBody;
  readonly entries: readonly InstanceValueBody[];
}

export interface Phase1aBody {
  readonly membership: MembershipBody;
  readonly ballot: BallotBody;
  readonly instances: readonly string[];
}

export interface Phase1bBody {
  readonly ballot: BallotBody;
  readonly promised: boolean;
  readonly maxBal: BallotBody;
  readonly reports: readonly InstanceReportBody[];
}

/** A coordinator replica is alive; `leader` is whom it trusts to lead, for operators. */
export interface HeartbeatBody {
  readonly leader: string;
  /** The sending process: a new one means the replica restarted, so its silence was real. */
  readonly incarnation?: string;
}

/** A replica that logged a transaction asks the leader it trusts to run it. */
export type HandoverBody = Record<string, never>;

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
const isName = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isValue = (value: unknown): boolean => value === 'Prepared' || value === 'Aborted';

function ballotError(value: unknown, field: string): string | undefined {
  if (!isObject(value)) return `${field} must be an object { round, replica }`;
  if (typeof value.round !== 'number' || !Number.isInteger(value.round) || value.round < 0) return `${field}.round must be a non-negative integer`;
  if (typeof value.replica !== 'string') return `${field}.replica must be a string`;
  if ((value.round === 0) !== (value.replica === '')) return `${field}: round 0 goes with replica "" and only with it`;
  return undefined;
}

function membershipError(value: unknown): string | undefined {
  if (!isObject(value)) return 'body.membership must be an object { rms, acceptors }';
  for (const key of ['rms', 'acceptors'] as const) {
    const list = value[key];
    if (!Array.isArray(list) || list.length === 0 || !list.every(isName)) return `body.membership.${key} must be a non-empty array of names`;
  }
  return undefined;
}

function entriesError(value: unknown): string | undefined {
  if (!Array.isArray(value) || value.length === 0) return 'body.entries must be a non-empty array';
  for (const entry of value) {
    if (!isObject(entry) || !isName(entry.rm) || !isValue(entry.value)) return 'body.entries[] must be { rm, value: "Prepared" | "Aborted" }';
    if (entry.reason !== undefined && typeof entry.reason !== 'string') return 'body.entries[].reason must be a string';
  }
  return undefined;
}

function reportsError(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'body.reports must be an array';
  for (const report of value) {
    if (!isObject(report) || !isName(report.rm)) return 'body.reports[] must be { rm, maxVBal?, maxVal? }';
    if ((report.maxVBal === undefined) !== (report.maxVal === undefined)) return 'body.reports[]: maxVBal and maxVal come together';
    if (report.maxVBal !== undefined && (ballotError(report.maxVBal, 'body.reports[].maxVBal') || !isValue(report.maxVal))) {
      return 'body.reports[] has a malformed maxVBal or maxVal';
    }
  }
  return undefined;
}

const first = (...checks: (() => string | undefined)[]): string | undefined => {
  for (const check of checks) {
    const error = check();
    if (error) return error;
  }
  return undefined;
};

export function phase2aBodyError(body: Fields): string | undefined {
  return first(
    () => membershipError(body.membership),
    () => ballotError(body.ballot, 'body.ballot'),
    () => (isName(body.leader) ? undefined : 'body.leader must be a non-empty string'),
    () => entriesError(body.entries),
  );
}

export function phase2bBodyError(body: Fields): string | undefined {
  return first(
    () => ballotError(body.ballot, 'body.ballot'),
    () => entriesError(body.entries),
  );
}

export function phase1aBodyError(body: Fields): string | undefined {
  return first(
    () => membershipError(body.membership),
    () => ballotError(body.ballot, 'body.ballot'),
    () => (Array.isArray(body.instances) && body.instances.every(isName) ? undefined : 'body.instances must be an array of names'),
  );
}

export function phase1bBodyError(body: Fields): string | undefined {
  return first(
    () => ballotError(body.ballot, 'body.ballot'),
    () => (typeof body.promised === 'boolean' ? undefined : 'body.promised must be a boolean'),
    () => ballotError(body.maxBal, 'body.maxBal'),
    () => reportsError(body.reports),
  );
}

export function heartbeatBodyError(body: Fields): string | undefined {
  if (typeof body.leader !== 'string') return 'body.leader must be a string';
  if (body.incarnation !== undefined && typeof body.incarnation !== 'string') return 'body.incarnation must be a string';
  return undefined;
}

/** The fields a paxos-commit PREPARE adds to the 2pc ones. */
export function paxosPrepareBodyError(body: Fields): string | undefined {
  return first(
    () => membershipError(body.membership),
    () => (isName(body.leader) ? undefined : 'body.leader must be a non-empty string'),
  );
}
