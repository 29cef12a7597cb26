/**
 * Bodies of the three-phase-commit messages (docs/protocol.md, "Three-phase commit") and
 * their strict validation. Field names follow the core's messages
 * (protocols/three-phase/messages.ts), so translating between the wire and a core is a
 * matter of copying fields.
 */
// envelope.ts imports this file too; the pattern is only read inside functions, after both loaded.
import { PARTICIPANT_NAME_PATTERN } from './participant-name';

/**
 * Who coordinates a phase: round 0 with `rm` "" is the transaction's coordinator; a
 * participant running the termination protocol takes a higher round paired with its name.
 */
export interface RecoveryEpochBody {
  readonly round: number;
  readonly rm: string;
}

/** Whether a message comes from the coordinator or from a participant (see docs/protocol.md). */
export type SenderRole = 'coordinator' | 'participant';

export type ReportedStateBody = 'aborted' | 'uncertain' | 'precommitted' | 'committed' | 'recovering';

/** PREPARE of a 3pc transaction: 3PC's CanCommit. */
export interface ThreePhasePrepareBody {
  readonly payload: unknown;
  readonly timeoutMs: number;
  /** Every participant of the transaction, in the order that ranks recovery coordinators. */
  readonly participants: readonly string[];
  /** How long a silent participant counts as alive; the failure detector's one parameter. */
  readonly participantTtlMs?: number;
}

export interface PreCommitBody {
  readonly recoveryEpoch: RecoveryEpochBody;
  readonly role: SenderRole;
  /** The sender decides within this long after sending, unless it fails. */
  readonly timeoutMs: number;
}

export interface PreCommitAckBody {
  readonly recoveryEpoch: RecoveryEpochBody;
}

export interface StateReqBody {
  readonly recoveryEpoch: RecoveryEpochBody;
  /** The recovery coordinator decides within this long after sending, unless it fails. */
  readonly timeoutMs: number;
}

export interface StateReportBody {
  readonly recoveryEpoch: RecoveryEpochBody;
  readonly state: ReportedStateBody;
  /** Set when the reporter already follows a higher epoch; `state` then says nothing. */
  readonly newerEpoch?: RecoveryEpochBody;
}

export interface DecisionReqBody {
  readonly role: SenderRole;
}

/** COMMIT and ABORT of a 3pc transaction: who sent it decides where the ACK goes. */
export interface ThreePhaseDecisionBody {
  readonly role?: SenderRole;
}

type Fields = Record<string, unknown>;

const REPORTED_STATES: readonly string[] = ['aborted', 'uncertain', 'precommitted', 'committed', 'recovering'];
const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
const isPositive = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

function epochError(value: unknown, field: string): string | undefined {
  if (!isObject(value)) return `body.${field} must be an object { round, rm }`;
  if (typeof value.round !== 'number' || !Number.isInteger(value.round) || value.round < 0) return `body.${field}.round must be a non-negative integer`;
  if (typeof value.rm !== 'string') return `body.${field}.rm must be a string`;
  if (value.round === 0 && value.rm !== '') return `body.${field}.rm must be "" in round 0`;
  if (value.round > 0 && !PARTICIPANT_NAME_PATTERN.test(value.rm)) return `body.${field}.rm must be a participant name in rounds above 0`;
  return undefined;
}

function roleError(value: unknown): string | undefined {
  return value === 'coordinator' || value === 'participant' ? undefined : 'body.role must be "coordinator" or "participant"';
}

/** Extra rules for a 3pc PREPARE on top of the common PREPARE fields. */
export function threePhasePrepareBodyError(body: Fields): string | undefined {
  const participants = body.participants;
  if (!Array.isArray(participants) || participants.length === 0) return 'body.participants must be a non-empty array of participant names';
  if (!participants.every((p) => typeof p === 'string' && PARTICIPANT_NAME_PATTERN.test(p))) return 'body.participants must hold participant names';
  if (new Set(participants).size !== participants.length) return 'body.participants must not repeat a name';
  if (body.participantTtlMs !== undefined && !isPositive(body.participantTtlMs)) return 'body.participantTtlMs must be a positive number';
  return undefined;
}

export function preCommitBodyError(body: Fields): string | undefined {
  const error = epochError(body.recoveryEpoch, 'recoveryEpoch') ?? roleError(body.role);
  if (error) return error;
  return isPositive(body.timeoutMs) ? undefined : 'body.timeoutMs must be a positive number';
}

export function preCommitAckBodyError(body: Fields): string | undefined {
  return epochError(body.recoveryEpoch, 'recoveryEpoch');
}

export function stateReqBodyError(body: Fields): string | undefined {
  const error = epochError(body.recoveryEpoch, 'recoveryEpoch');
  if (error) return error;
  return isPositive(body.timeoutMs) ? undefined : 'body.timeoutMs must be a positive number';
}

export function stateReportBodyError(body: Fields): string | undefined {
  const error = epochError(body.recoveryEpoch, 'recoveryEpoch');
  if (error) return error;
  if (typeof body.state !== 'string' || !REPORTED_STATES.includes(body.state)) return `body.state must be one of ${REPORTED_STATES.join(', ')}`;
  return body.newerEpoch === undefined ? undefined : epochError(body.newerEpoch, 'newerEpoch');
}

export function decisionReqBodyError(body: Fields): string | undefined {
  return roleError(body.role);
}

/** COMMIT and ABORT of a 3pc transaction must say who sent them. */
export function threePhaseDecisionBodyError(body: Fields): string | undefined {
  return roleError(body.role);
}
