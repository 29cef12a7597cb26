/**
 * Translation between 3pc envelopes (docs/protocol.md, "Three-phase commit") and the inputs
 * and messages of the pure 3PC participant core. The core addresses the coordinator as `TM`
 * and peers by name; on the wire the coordinator is the topic `P.coordinator` and a peer is
 * `P.rm.<name>`, and `body.role` tells a receiver which of the two sent a message.
 */
import { Decision } from '../protocols/common/effects';
import { TM, ThreePhaseMessage } from '../protocols/three-phase/messages';
import type { ParticipantInput, RmState } from '../protocols/three-phase/participant';
import { Envelope } from '../transport/kafka/envelope';

/** One inbound message, as a core input plus what the driver needs around it. */
export interface InboundStep {
  readonly input: ParticipantInput;
  /** Set on the coordinator's orders only: an order from an older owner epoch is ignored. */
  readonly ownerEpoch?: number;
  readonly payload?: unknown;
  /** How long the sender said it may take before it decides: PREPARE's, PRECOMMIT's or STATE_REQ's timeoutMs. */
  readonly senderBoundMs?: number;
  readonly participantTtlMs?: number;
  readonly traceparent?: string;
}

/** A message for the coordinator (`to` = TM) or for a peer, ready to be wrapped in an envelope. */
export interface ThreePhaseReply {
  readonly to: string;
  readonly type: Envelope['type'];
  readonly body: Record<string, unknown>;
}

/** What the outbound translation needs besides the message. */
export interface ReplyContext {
  readonly rmState: RmState;
  readonly voteReason?: string;
  /** The timeoutMs this participant promises when it asks peers for their state. */
  readonly stateReqBoundMs: number;
  /** The timeoutMs this participant promises when, as recovery coordinator, it pre-commits peers. */
  readonly preCommitBoundMs: number;
}

const fromRole = (envelope: { readonly from: string; readonly body: { readonly role?: string } }): string =>
  envelope.body.role === 'coordinator' ? TM : envelope.from;

/**
 * The core input for an envelope on this participant's topic: undefined when the message
 * does not belong there (dead-letter it), null when it is valid but needs nothing.
 */
export function inboundStep(envelope: Envelope, traceparent?: string): InboundStep | null | undefined {
  const trace = traceparent ? { traceparent } : {};
  switch (envelope.type) {
    case 'PREPARE':
      return {
        input: { type: 'canCommit', rms: envelope.body.participants ?? [] },
        ownerEpoch: envelope.epoch,
        payload: envelope.body.payload ?? null,
        senderBoundMs: envelope.body.timeoutMs,
        participantTtlMs: envelope.body.participantTtlMs,
        ...trace,
      };
    case 'PRECOMMIT': {
      const from = fromRole(envelope);
      return { input: { type: 'preCommit', epoch: envelope.body.recoveryEpoch, from }, senderBoundMs: envelope.body.timeoutMs, ...ownerOf(envelope, from), ...trace };
    }
    case 'COMMIT':
    case 'ABORT': {
      const from = fromRole(envelope);
      return { input: { type: 'decision', decision: envelope.type, from }, ...ownerOf(envelope, from), ...trace };
    }
    case 'DECISION_REQ': {
      const from = fromRole(envelope);
      return { input: { type: 'decisionReq', from }, ...ownerOf(envelope, from), ...trace };
    }
    case 'STATE_REQ':
      return { input: { type: 'stateReq', epoch: envelope.body.recoveryEpoch, from: envelope.from }, senderBoundMs: envelope.body.timeoutMs, ...trace };
    case 'STATE_REPORT': {
      const { recoveryEpoch, state, newerEpoch } = envelope.body;
      return { input: { type: 'stateReport', rm: envelope.from, epoch: recoveryEpoch, state, ...(newerEpoch ? { newerEpoch } : {}) }, ...trace };
    }
    case 'PRECOMMIT_ACK':
      return { input: { type: 'preCommitAck', rm: envelope.from, epoch: envelope.body.recoveryEpoch }, ...trace };
    case 'ACK':
      // A peer acknowledging the outcome this participant told it: nothing waits for that.
      return null;
    default:
      return undefined;
  }
}

function ownerOf(envelope: Envelope, from: string): { ownerEpoch?: number } {
  return from === TM ? { ownerEpoch: envelope.epoch } : {};
}

export function toReply(to: string, message: ThreePhaseMessage, context: ReplyContext): ThreePhaseReply {
  const outcome: Decision = context.rmState === 'committed' ? 'COMMIT' : 'ABORT';
  switch (message.type) {
    case 'Vote':
      return {
        to,
        type: 'VOTE',
        body: message.vote === 'Prepared' ? { vote: 'YES' } : { vote: 'NO', reason: context.voteReason ?? 'aborted' },
      };
    case 'PreCommitAck':
      return { to, type: 'PRECOMMIT_ACK', body: { recoveryEpoch: message.epoch } };
    case 'Ack':
      return { to, type: 'ACK', body: { outcome } };
    case 'StateReport':
      return { to, type: 'STATE_REPORT', body: { recoveryEpoch: message.epoch, state: message.state, ...(message.newerEpoch ? { newerEpoch: message.newerEpoch } : {}) } };
    case 'DecisionReq':
      return { to, type: 'DECISION_REQ', body: { role: 'participant' } };
    case 'StateReq':
      return { to, type: 'STATE_REQ', body: { recoveryEpoch: message.epoch, timeoutMs: context.stateReqBoundMs } };
    case 'PreCommit':
      return { to, type: 'PRECOMMIT', body: { recoveryEpoch: message.epoch, role: 'participant', timeoutMs: context.preCommitBoundMs } };
    case 'DoCommit':
      return { to, type: 'COMMIT', body: { role: 'participant' } };
    case 'Abort':
      return { to, type: 'ABORT', body: { role: 'participant' } };
    case 'CanCommit':
      throw new Error('a participant never sends CanCommit');
  }
}
