/**
 * Translation between 3pc envelopes (docs/protocol.md, section 15) and the inputs and
 * messages of the pure 3PC coordinator core. Participants answer the coordinator on
 * `P.coordinator`; the coordinator marks what it sends with `role` "coordinator", so that a
 * participant can tell its messages from a recovery coordinator's.
 */
import { CoordinatorInput } from '../../protocols/three-phase/coordinator';
import { ThreePhaseMessage } from '../../protocols/three-phase/messages';
import { Envelope } from '../../transport/kafka/envelope';
import { EnvelopeContent } from '../protocol-driver.base';

/** A core input, with the reason to log should this step decide, and a NO vote's own reason. */
export type CoreInput = CoordinatorInput & { readonly why?: string; readonly voteReason?: string };

/** What the outbound translation needs besides the message. */
export interface OutboundContext {
  readonly payload: unknown;
  readonly timeoutMs: number;
  readonly participantTtlMs: number;
  /** How long after PRECOMMIT this coordinator promises to decide. */
  readonly preCommitPromiseMs: number;
}

const COORDINATOR = 'coordinator';

/** undefined: not a message for the 3pc coordinator (dead-lettered); null: valid, but nothing to do. */
export function toCoreInput(envelope: Envelope): CoreInput | null | undefined {
  switch (envelope.type) {
    case 'VOTE': {
      const { vote, reason } = envelope.body;
      if (vote === 'YES') return { type: 'vote', rm: envelope.from, vote: 'Prepared' };
      return { type: 'vote', rm: envelope.from, vote: 'Aborted', voteReason: reason, why: `${envelope.from} voted no${reason ? `: ${reason}` : ''}` };
    }
    case 'PRECOMMIT_ACK':
      // Acks of a recovery coordinator's PreCommit are not ours.
      return envelope.body.recoveryEpoch.round === 0 ? { type: 'preCommitAck', rm: envelope.from } : null;
    case 'ACK':
      return { type: 'ack', rm: envelope.from };
    case 'DECISION_REQ':
      return { type: 'decisionReq', from: envelope.from };
    case 'COMMIT':
    case 'ABORT':
      // A participant answering this coordinator's DECISION_REQ while it is in doubt.
      return { type: 'learned', decision: envelope.type };
    default:
      return undefined;
  }
}

export function outboundOf(message: ThreePhaseMessage, context: OutboundContext): EnvelopeContent {
  switch (message.type) {
    case 'CanCommit':
      return {
        type: 'PREPARE',
        body: { payload: context.payload, timeoutMs: context.timeoutMs, participants: message.rms, participantTtlMs: context.participantTtlMs },
      };
    case 'PreCommit':
      return { type: 'PRECOMMIT', body: { recoveryEpoch: message.epoch, role: COORDINATOR, timeoutMs: context.preCommitPromiseMs } };
    case 'DoCommit':
      return { type: 'COMMIT', body: { role: COORDINATOR } };
    case 'Abort':
      return { type: 'ABORT', body: { role: COORDINATOR } };
    case 'DecisionReq':
      return { type: 'DECISION_REQ', body: { role: COORDINATOR } };
    default:
      throw new Error(`the 3pc coordinator core asked to send ${message.type}, which only participants send`);
  }
}
