/**
 * Nest's Kafka transport with two additions. Handlers name logical channels
 * (`@EventPattern('coordinator')`) and the server maps them onto the deployment's prefixed
 * topics (`txn.coordinator`), so the prefix stays configuration instead of a constant frozen
 * into decorators. And it reports the partitions this member holds, so the coordinator
 * knows which transactions are its to run.
 */
import { KafkaOptions, ServerKafka } from '@nestjs/microservices';
import { MessageHandler } from '@nestjs/microservices/interfaces';

export type AssignmentListener = (partitionsByTopic: Readonly<Record<string, readonly number[]>>) => void;

/** What a consumer event means for the partitions this member holds. */
export type ConsumerEventKind = 'groupJoin' | 'stop' | 'disconnect' | 'crash';

/**
 * Whether a consumer event gives the partitions up. Only a new assignment moves them, or
 * the end of consuming: a stop or disconnect while the server closes, or a crash that
 * kafkajs will not restart. A crash it restarts (the broker went away, say) passes through
 * a stop and a disconnect too, and must keep the running transactions: the lease in
 * Postgres stays renewed, another replica takes over only once it has expired, and
 * participants ignore a lower epoch, so holding on is safe.
 */
export function releasesPartitions(kind: Exclude<ConsumerEventKind, 'groupJoin'>, event: { readonly closing: boolean; readonly restart?: boolean }): boolean {
  if (kind === 'crash') return event.restart !== true;
  return event.closing;
}

export class PrefixedKafkaServer extends ServerKafka {
  private closing = false;

  constructor(
    options: KafkaOptions['options'],
    private readonly topicPrefix: string,
    private readonly onAssignment: AssignmentListener = () => undefined,
  ) {
    super(options ?? {});
  }

  /** Reports the partitions this member holds after every rebalance, and none once it stops consuming. */
  protected override registerConsumerEventListeners(): void {
    super.registerConsumerEventListeners();
    const consumer = this.consumer;
    if (!consumer) return;
    const { GROUP_JOIN, STOP, DISCONNECT, CRASH } = consumer.events;
    consumer.on(GROUP_JOIN, (event) => this.onAssignment(event.payload.memberAssignment));
    consumer.on(STOP, () => {
      if (releasesPartitions('stop', { closing: this.closing })) this.onAssignment({});
    });
    consumer.on(DISCONNECT, () => {
      if (releasesPartitions('disconnect', { closing: this.closing })) this.onAssignment({});
    });
    consumer.on(CRASH, (event) => {
      if (releasesPartitions('crash', { closing: this.closing, restart: event.payload.restart })) this.onAssignment({});
    });
  }

  override async close(): Promise<void> {
    this.closing = true;
    await super.close();
  }

  override addHandler(pattern: unknown, callback: MessageHandler, isEventHandler = false, extras: Record<string, unknown> = {}): void {
    const topic = typeof pattern === 'string' ? `${this.topicPrefix}.${pattern}` : pattern;
    super.addHandler(topic, callback, isEventHandler, extras);
  }
}
