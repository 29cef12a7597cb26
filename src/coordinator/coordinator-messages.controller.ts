/**
 * Inbound protocol messages, consumed through Nest's Kafka transport. Every message is
 * parsed strictly; one that does not parse, that no driver takes, or whose handling fails
 * because of the message itself goes to the dead-letter topic with the reason, and
 * consumption moves on. An outage is retried a bounded number of times (message-failure.ts)
 * so that it neither loses a good message nor holds the partition forever. Announcements
 * are not read here but on a consumer of their own (registry/announcement-consumer.ts).
 */
import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, KafkaContext, Payload } from '@nestjs/microservices';
import { ProtocolDrivers } from './protocol-driver';
import { Envelope, parseEnvelope } from '../transport/kafka/envelope';
import { KafkaPublisher } from '../transport/kafka/kafka-publisher';
import { DEFAULT_RETRY_POLICY, handleOrReason } from '../transport/kafka/message-failure';
import { COORDINATOR_PATTERN } from '../transport/kafka/kafka.constants';

@Controller()
export class CoordinatorMessagesController {
  private readonly logger = new Logger(CoordinatorMessagesController.name);

  constructor(
    private readonly drivers: ProtocolDrivers,
    private readonly publisher: KafkaPublisher,
  ) {}

  @EventPattern(COORDINATOR_PATTERN)
  async onProtocolMessage(@Payload() value: unknown, @Ctx() context: KafkaContext): Promise<void> {
    const envelope = await this.accept(value, context);
    if (!envelope) return;
    const reason = await handleOrReason(() => this.route(envelope), {
      ...DEFAULT_RETRY_POLICY,
      onRetry: (attempt, error) => this.logger.warn(`transaction ${envelope.txnId}: ${envelope.type} from ${envelope.from} failed (attempt ${attempt}), retrying: ${(error as Error).message}`),
    });
    if (reason) await this.deadLetter(value, context, reason);
  }

  private async route(envelope: Envelope): Promise<string | undefined> {
    if (!this.drivers.has(envelope.protocol)) return `protocol ${envelope.protocol} is not served by this coordinator`;
    if (await this.drivers.for(envelope.protocol).deliver(envelope)) return undefined;
    return `${envelope.type} is not a ${envelope.protocol} message for coordinators`;
  }

  private async accept(value: unknown, context: KafkaContext): Promise<Envelope | undefined> {
    const parsed = parseEnvelope(value);
    if (parsed.ok) return parsed.envelope;
    await this.deadLetter(value, context, parsed.reason);
    return undefined;
  }

  /**
   * A message that cannot even be dead-lettered (the broker is away) is left unconsumed: the
   * error goes back to the consumer, which reads the message again.
   */
  private async deadLetter(value: unknown, context: KafkaContext, reason: string): Promise<void> {
    await this.publisher.deadLetter(context.getTopic(), context.getMessage().key, rawValue(value), reason);
  }
}

function rawValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
