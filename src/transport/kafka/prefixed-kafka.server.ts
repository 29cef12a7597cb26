/**
 * Nest's Kafka transport with one addition: handlers name logical channels
 * (`@EventPattern('coordinator')`) and the server maps them onto the deployment's prefixed
 * topics (`txn.coordinator`), so the prefix stays configuration instead of a constant
 * frozen into decorators.
 */
import { KafkaOptions, ServerKafka } from '@nestjs/microservices';
import { MessageHandler } from '@nestjs/microservices/interfaces';

export class PrefixedKafkaServer extends ServerKafka {
  constructor(
    options: KafkaOptions['options'],
    private readonly topicPrefix: string,
  ) {
    super(options ?? {});
  }

  override addHandler(pattern: unknown, callback: MessageHandler, isEventHandler = false, extras: Record<string, unknown> = {}): void {
    const topic = typeof pattern === 'string' ? `${this.topicPrefix}.${pattern}` : pattern;
    super.addHandler(topic, callback, isEventHandler, extras);
  }
}
