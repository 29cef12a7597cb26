/**
 * Nest's Kafka transport with one addition: handlers name logical channels
 * (`@EventPattern('coordinator')`) and the server maps them onto the deployment's prefixed
 * topics (`txn.coordinator`), so the prefix stays configuration instead of a constant
 * frozen into decorators.
 */
import { KafkaOptions, ServerKafka } from '@nestjs/microservices';
import { MessageHandler } from '@nestjs/microservices/interfaces';

export type AssignmentListener = (partitionsByTopic: Readonly<Record<string, readonly number[]>>) => void;

export class PrefixedKafkaServer extends ServerKafka {
  constructor(
    options: KafkaOptions['options'],
    private readonly topicPrefix: string,
    private readonly onAssignment: AssignmentListener = () => undefined,
  ) {
    super(options ?? {});
  }

  /** Reports the partitions this member holds after every rebalance, and none once it stops. */
  protected override registerConsumerEventListeners(): void {
    super.registerConsumerEventListeners();
    const consumer = this.consumer;
    if (!consumer) return;
    consumer.on(consumer.events.GROUP_JOIN, (event) => this.onAssignment(event.payload.memberAssignment));
    for (const stopped of [consumer.events.STOP, consumer.events.CRASH, consumer.events.DISCONNECT]) {
      consumer.on(stopped, () => this.onAssignment({}));
    }
  }

  override addHandler(pattern: unknown, callback: MessageHandler, isEventHandler = false, extras: Record<string, unknown> = {}): void {
    const topic = typeof pattern === 'string' ? `${this.topicPrefix}.${pattern}` : pattern;
    super.addHandler(topic, callback, isEventHandler, extras);
  }
}
