/**
 * Inbound protocol messages, consumed through Nest's Kafka transport. Every message is
 * parsed strictly; one that does not parse, or names a transaction participant the log
 * does not know, goes to the dead-letter topic with the reason, and consumption moves on.
 */
import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, KafkaContext, Payload } from '@nestjs/microservices';
import { ProtocolDrivers } from '../../coordinator/protocol-driver';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { Envelope, parseEnvelope } from './envelope';
import { KafkaPublisher } from './kafka-publisher';
import { COORDINATOR_PATTERN, PARTICIPANTS_PATTERN } from './kafka.constants';

@Controller()
export class CoordinatorMessagesController {
  private readonly logger = new Logger(CoordinatorMessagesController.name);

  constructor(
    private readonly drivers: ProtocolDrivers,
    private readonly registry: ParticipantRegistry,
    private readonly publisher: KafkaPublisher,
  ) {}

  @EventPattern(COORDINATOR_PATTERN)
  async onProtocolMessage(@Payload() value: unknown, @Ctx() context: KafkaContext): Promise<void> {
    const envelope = await this.accept(value, context);
    if (!envelope) return;
    const reason = !this.drivers.has(envelope.protocol)
      ? `protocol ${envelope.protocol} is not served by this coordinator`
      : (await this.drivers.for(envelope.protocol).deliver(envelope))
        ? undefined
        : `${envelope.type} is not a ${envelope.protocol} message for coordinators`;
    if (reason) await this.deadLetter(value, context, reason);
  }

  @EventPattern(PARTICIPANTS_PATTERN)
  async onAnnouncement(@Payload() value: unknown, @Ctx() context: KafkaContext): Promise<void> {
    const envelope = await this.accept(value, context, ['ANNOUNCE']);
    if (envelope?.type === 'ANNOUNCE') await this.registry.recordAnnouncement(envelope.body, envelope.sentAt);
  }

  private async accept(value: unknown, context: KafkaContext, types?: readonly Envelope['type'][]): Promise<Envelope | undefined> {
    const parsed = parseEnvelope(value);
    const reason = !parsed.ok ? parsed.reason : !types || types.includes(parsed.envelope.type) ? undefined : `${parsed.envelope.type} is not expected on this topic`;
    if (reason === undefined && parsed.ok) return parsed.envelope;
    await this.deadLetter(value, context, reason ?? 'rejected');
    return undefined;
  }

  private async deadLetter(value: unknown, context: KafkaContext, reason: string): Promise<void> {
    try {
      await this.publisher.deadLetter(context.getTopic(), context.getMessage().key, rawValue(value), reason);
    } catch (error) {
      this.logger.error(`could not dead-letter a message from ${context.getTopic()}: ${(error as Error).message}`);
    }
  }
}

function rawValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
