/**
 * The versioned JSON envelope every protocol message travels in (docs/protocol.md is the
 * contract). Parsing is strict so that a malformed message is rejected with a reason, and
 * sent to the dead-letter topic, instead of reaching a protocol core.
 */
import { PARTICIPANT_NAME_PATTERN } from './participant-name';
import {
  HandoverBody,
  HeartbeatBody,
  MembershipBody,
  Phase1aBody,
  Phase1bBody,
  Phase2aBody,
  Phase2bBody,
  heartbeatBodyError,
  paxosPrepareBodyError,
  phase1aBodyError,
  phase1bBodyError,
  phase2aBodyError,
  phase2bBodyError,
} from './paxos-commit-bodies';
import {
  DecisionReqBody,
  PreCommitAckBody,
  PreCommitBody,
  SenderRole,
  StateReportBody,
  StateReqBody,
  decisionReqBodyError,
  preCommitAckBodyError,
  preCommitBodyError,
  stateReportBodyError,
  stateReqBodyError,
  threePhaseDecisionBodyError,
  threePhasePrepareBodyError,
} from './three-phase-bodies';

export const ENVELOPE_VERSION = 1;

export const PROTOCOLS = ['2pc', '3pc', 'paxos-commit'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

/** Paxos Commit's own messages: votes as phase 2a, acceptor replies, and replica-to-replica traffic. */
export const PAXOS_COMMIT_MESSAGE_TYPES = ['PHASE1A', 'PHASE1B', 'PHASE2A', 'PHASE2B', 'HEARTBEAT', 'HANDOVER'] as const;
/** Three-phase commit's own messages: the PreCommit phase and the termination protocol. */
export const THREE_PHASE_MESSAGE_TYPES = ['PRECOMMIT', 'PRECOMMIT_ACK', 'STATE_REQ', 'STATE_REPORT', 'DECISION_REQ'] as const;
export const MESSAGE_TYPES = ['ANNOUNCE', 'PREPARE', 'VOTE', 'COMMIT', 'ABORT', 'ACK', 'QUERY', ...PAXOS_COMMIT_MESSAGE_TYPES, ...THREE_PHASE_MESSAGE_TYPES] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export { PARTICIPANT_NAME_PATTERN };

export interface AnnounceBody {
  readonly name: string;
  readonly protocols: readonly string[];
  readonly topic: string;
  readonly instanceId: string;
}
export interface PrepareBody {
  readonly payload: unknown;
  readonly timeoutMs: number;
  /** paxos-commit only: the instances and acceptors of the transaction. */
  readonly membership?: MembershipBody;
  /** paxos-commit only: the leader the acceptors report phase 2b to. */
  readonly leader?: string;
  /** 3pc only: every participant, in the order that ranks recovery coordinators. */
  readonly participants?: readonly string[];
  /** 3pc only: how long a silent participant still counts as alive. */
  readonly participantTtlMs?: number;
}
export interface VoteBody {
  readonly vote: 'YES' | 'NO';
  readonly reason?: string;
}
export interface AckBody {
  readonly outcome: 'COMMIT' | 'ABORT';
}
export type EmptyBody = Record<string, never>;

interface Base<T extends MessageType, B> {
  readonly v: typeof ENVELOPE_VERSION;
  readonly type: T;
  readonly txnId: string;
  readonly protocol: ProtocolName;
  /** The sender: a coordinator instance id or a participant name. */
  readonly from: string;
  /** Owner epoch of the transaction; participants ignore orders from a lower epoch. */
  readonly epoch: number;
  readonly sentAt: string;
  readonly body: B;
}

export type Envelope =
  | Base<'ANNOUNCE', AnnounceBody>
  | Base<'PREPARE', PrepareBody>
  | Base<'VOTE', VoteBody>
  /** `role` is set in 3pc only, where participants send decisions too. */
  | Base<'COMMIT', { readonly role?: SenderRole }>
  | Base<'ABORT', { readonly role?: SenderRole }>
  | Base<'ACK', AckBody>
  | Base<'QUERY', EmptyBody>
  | Base<'PRECOMMIT', PreCommitBody>
  | Base<'PRECOMMIT_ACK', PreCommitAckBody>
  | Base<'STATE_REQ', StateReqBody>
  | Base<'STATE_REPORT', StateReportBody>
  | Base<'DECISION_REQ', DecisionReqBody>
  | Base<'PHASE1A', Phase1aBody>
  | Base<'PHASE1B', Phase1bBody>
  | Base<'PHASE2A', Phase2aBody>
  | Base<'PHASE2B', Phase2bBody>
  | Base<'HEARTBEAT', HeartbeatBody>
  | Base<'HANDOVER', HandoverBody>;

export type EnvelopeOf<T extends MessageType> = Extract<Envelope, { type: T }>;

export type ParseResult = { readonly ok: true; readonly envelope: Envelope } | { readonly ok: false; readonly reason: string };

const fail = (reason: string): ParseResult => ({ ok: false, reason });
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function bodyError(type: MessageType, body: Record<string, unknown>): string | undefined {
  switch (type) {
    case 'ANNOUNCE':
      if (typeof body.name !== 'string' || !PARTICIPANT_NAME_PATTERN.test(body.name)) return 'body.name must match ' + PARTICIPANT_NAME_PATTERN;
      if (!Array.isArray(body.protocols) || !body.protocols.every((p) => typeof p === 'string')) return 'body.protocols must be an array of strings';
      if (typeof body.topic !== 'string' || body.topic.length === 0) return 'body.topic must be a non-empty string';
      if (typeof body.instanceId !== 'string') return 'body.instanceId must be a string';
      return undefined;
    case 'PREPARE':
      if (typeof body.timeoutMs !== 'number' || body.timeoutMs <= 0) return 'body.timeoutMs must be a positive number';
      return undefined;
    case 'VOTE':
      if (body.vote !== 'YES' && body.vote !== 'NO') return 'body.vote must be "YES" or "NO"';
      if (body.reason !== undefined && typeof body.reason !== 'string') return 'body.reason must be a string';
      return undefined;
    case 'ACK':
      if (body.outcome !== 'COMMIT' && body.outcome !== 'ABORT') return 'body.outcome must be "COMMIT" or "ABORT"';
      return undefined;
    case 'COMMIT':
    case 'ABORT':
    case 'QUERY':
      return undefined;
    case 'PHASE1A':
      return phase1aBodyError(body);
    case 'PHASE1B':
      return phase1bBodyError(body);
    case 'PHASE2A':
      return phase2aBodyError(body);
    case 'PHASE2B':
      return phase2bBodyError(body);
    case 'HEARTBEAT':
      return heartbeatBodyError(body);
    case 'HANDOVER':
      return undefined;
    case 'PRECOMMIT':
      return preCommitBodyError(body);
    case 'PRECOMMIT_ACK':
      return preCommitAckBodyError(body);
    case 'STATE_REQ':
      return stateReqBodyError(body);
    case 'STATE_REPORT':
      return stateReportBodyError(body);
    case 'DECISION_REQ':
      return decisionReqBodyError(body);
  }
}

export function parseEnvelope(raw: unknown): ParseResult {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw)) value = raw.toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return fail('value is not valid JSON');
    }
  }
  if (!isObject(value)) return fail('envelope must be a JSON object');
  if (value.v !== ENVELOPE_VERSION) return fail(`unsupported envelope version ${JSON.stringify(value.v)}; expected ${ENVELOPE_VERSION}`);
  if (typeof value.type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(value.type)) {
    return fail(`unknown message type ${JSON.stringify(value.type)}`);
  }
  const type = value.type as MessageType;
  const txnIdError = txnIdErrorOf(type, value.txnId);
  if (txnIdError) return fail(txnIdError);
  if (typeof value.protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(value.protocol)) {
    return fail(`unknown protocol ${JSON.stringify(value.protocol)}`);
  }
  if (typeof value.from !== 'string' || value.from.length === 0) return fail('from must be a non-empty string');
  if (typeof value.epoch !== 'number' || !Number.isInteger(value.epoch) || value.epoch < 0) return fail('epoch must be a non-negative integer');
  if (!isIsoTimestamp(value.sentAt)) return fail(`sentAt must be an ISO-8601 timestamp, got ${JSON.stringify(value.sentAt)}`);
  if (!isObject(value.body)) return fail('body must be a JSON object');
  const error = bodyError(type, value.body) ?? (type === 'PREPARE' && value.protocol === 'paxos-commit' ? paxosPrepareBodyError(value.body) : undefined) ?? threePhaseBodyError(type, value.protocol, value.body);
  if (error) return fail(`${type}: ${error}`);
  return { ok: true, envelope: value as unknown as Envelope };
}

/** Transaction ids are the decision log's uuid keys; only the control messages carry none. */
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const WITHOUT_TXN: readonly MessageType[] = ['ANNOUNCE', 'HEARTBEAT'];
/** A calendar date, a time to at least the minute, and a zone: what toISOString and Python's isoformat write. */
const ISO_TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

function txnIdErrorOf(type: MessageType, txnId: unknown): string | undefined {
  if (typeof txnId !== 'string') return 'txnId must be a string';
  if (WITHOUT_TXN.includes(type) || UUID_PATTERN.test(txnId)) return undefined;
  return `txnId of ${type} must be a UUID, got ${JSON.stringify(txnId.slice(0, 80))}`;
}

function isIsoTimestamp(value: unknown): boolean {
  return typeof value === 'string' && ISO_TIMESTAMP_PATTERN.test(value) && !Number.isNaN(Date.parse(value));
}

/** The rules a 3pc PREPARE, COMMIT or ABORT adds to the common ones. */
function threePhaseBodyError(type: MessageType, protocol: string, body: Record<string, unknown>): string | undefined {
  if (protocol !== '3pc') return undefined;
  if (type === 'PREPARE') return threePhasePrepareBodyError(body);
  if (type === 'COMMIT' || type === 'ABORT') return threePhaseDecisionBodyError(body);
  return undefined;
}

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}
