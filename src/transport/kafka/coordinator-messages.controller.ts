/**
 * Inbound protocol messages, consumed through Nest's Kafka transport. Every message is
 * parsed strictly; one that does not parse, or names a transaction participant the log
 * does not know, goes to the dead-letter topic with the reason, and consumption moves on.
 */
import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, KafkaContext, Payload } from '@nestjs/microservices';
import { TwoPhaseDriver } from '../../coordinator/two-phase.driver';
import { CoordinatorInput } from '../../protocols/two-phase/coordinator';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { Envelope, parseEnvelope } from './envelope';
import { KafkaPublisher } from './kafka-publisher';
import { COORDINATOR_PATTERN, PARTICIPANTS_PATTERN } from './kafka.constants';

@Controller()
export class CoordinatorMessagesController {
  private readonly logger = new Logger(CoordinatorMessagesController.name);

  constructor(
    private readonly driver: TwoPhaseDriver,
    private readonly registry: ParticipantRegistry,
    private readonly publisher: KafkaPublisher,
  ) {}

  @EventPattern(COORDINATOR_PATTERN)
  async onProtocolMessage(@Payload() value: unknown, @Ctx() context: KafkaContext): Promise<void> {
    const envelope = await this.accept(value, context, ['VOTE', 'ACK', 'QUERY']);
    if (!envelope) return;
    const input = toCoordinatorInput(envelope);
    if (input) await this.driver.deliver(envelope.txnId, input, envelope.epoch);
  }

  @EventPattern(PARTICIPANTS_PATTERN)
  async onAnnouncement(@Payload() value: unknown, @Ctx() context: KafkaContext): Promise<void> {
    const envelope = await this.accept(value, context, ['ANNOUNCE']);
    if (envelope?.type === 'ANNOUNCE') await this.registry.recordAnnouncement(envelope.body, envelope.sentAt);
  }

  private async accept(value: unknown, context: KafkaContext, types: readonly Envelope['type'][]): Promise<Envelope | undefined> {
    const parsed = parseEnvelope(value);
    const reason = !parsed.ok ? parsed.reason : types.includes(parsed.envelope.type) ? undefined : `${parsed.envelope.type} is not expected on this topic`;
    if (reason === undefined && parsed.ok) return parsed.envelope;
    const message = context.getMessage();
    try {
      await this.publisher.deadLetter(context.getTopic(), message.key, rawValue(value), reason ?? 'rejected');
    } catch (error) {
      this.logger.error(`could not dead-letter a message from ${context.getTopic()}: ${(error as Error).message}`);
    }
    return undefined;
  }
}

function rawValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function toCoordinatorInput(envelope: Envelope): CoordinatorInput | undefined {
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
