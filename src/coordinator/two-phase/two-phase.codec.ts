/**
 * The 2PC coordinator's wire codec: how a participant's envelope reads as an input of the
 * core (protocols/two-phase/coordinator.ts). The translation between the wire's YES/NO and
 * the core's Prepared/Aborted happens here, once.
 */
import { CoordinatorInput } from '../../protocols/two-phase/coordinator';
import { Envelope } from '../../transport/kafka/envelope';

export function toCoordinatorInput(envelope: Envelope): CoordinatorInput | undefined {
  switch (envelope.type) {
    case 'VOTE':
      return { type: 'vote', rm: envelope.from, vote: envelope.body.vote === 'YES' ? 'Prepared' : 'Aborted', reason: envelope.body.reason };
    case 'ACK':
      return { type: 'ack', rm: envelope.from };
    case 'QUERY':
      return { type: 'query', rm: envelope.from };
    default:
      return undefined;
  }
}
