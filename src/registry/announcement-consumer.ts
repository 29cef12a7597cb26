/**
 * Participant announcements, read on a kafkajs consumer of their own. Announcements are the
 * control plane: if they queued behind votes and acknowledgements (each an awaited write), a
 * busy coordinator would declare live participants dead. So they never share a consumer with
 * protocol work, and a whole fetched batch costs one upsert: the newest announcement of each
 * participant, stamped with the database's `now()`.
 *
 * Every replica reads every announcement, in a consumer group of its own that never commits
 * an offset (so each start begins at the newest message). A group shared by the replicas
 * would write each announcement once, but when a replica dies its partitions go unread until
 * the group's session timeout expires, longer than a participant's TTL, and a replica
 * starting would read a backlog of old announcements that, stamped on arrival, would make
 * dead participants look alive. The price is one small upsert per replica per batch.
 */
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Consumer, EachBatchPayload, Kafka, logLevel } from 'kafkajs';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { AnnounceBody, parseEnvelope } from '../transport/kafka/envelope';
import { KafkaPublisher } from '../transport/kafka/kafka-publisher';
import { KAFKA_TOPICS } from '../transport/kafka/kafka.constants';
import { DEFAULT_RETRY_POLICY, handleOrReason } from '../transport/kafka/message-failure';
import { Topics } from '../transport/kafka/topics';
import { ParticipantRegistry } from './participant-registry.service';

@Injectable()
export class AnnouncementConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AnnouncementConsumer.name);
  private consumer: Consumer | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KAFKA_TOPICS) private readonly topics: Topics,
    private readonly registry: ParticipantRegistry,
    private readonly publisher: KafkaPublisher,
  ) {}

  /** After every module's init, so the publisher has created the participants topic. */
  async onApplicationBootstrap(): Promise<void> {
    const kafka = new Kafka({ clientId: `coordinator-${this.config.coordinatorId}-announcements`, brokers: [...this.config.kafkaBrokers], logLevel: logLevel.WARN });
    const consumer = kafka.consumer({
      groupId: `${this.config.topicPrefix}.coordinators.announcements.${this.config.coordinatorId}`,
      sessionTimeout: this.config.kafkaSessionTimeoutMs,
      heartbeatInterval: Math.max(100, Math.floor(this.config.kafkaSessionTimeoutMs / 5)),
      maxWaitTimeInMs: 20,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event) => this.logger.error(`announcement consumer crashed (restart: ${event.payload.restart}): ${event.payload.error.message}`));
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topics.participants], fromBeginning: false });
    await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: this.config.kafkaPartitions, eachBatch: (payload) => this.onBatch(payload) });
    await joined;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer?.disconnect().catch((error: Error) => this.logger.warn(`announcement consumer disconnect: ${error.message}`));
  }

  private async onBatch({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    const announcements: AnnounceBody[] = [];
    for (const message of batch.messages) {
      const parsed = parseEnvelope(message.value);
      if (parsed.ok && parsed.envelope.type === 'ANNOUNCE') announcements.push(parsed.envelope.body);
      else await this.publisher.deadLetter(batch.topic, message.key, message.value, parsed.ok ? `${parsed.envelope.type} is not expected on this topic` : parsed.reason);
    }
    const reason = await handleOrReason(() => this.registry.recordAnnouncements(announcements).then(() => undefined), {
      ...DEFAULT_RETRY_POLICY,
      onRetry: (attempt, error) => this.logger.warn(`recording ${announcements.length} announcement(s) failed (attempt ${attempt}), retrying: ${(error as Error).message}`),
    });
    // Announcements are not replayed: the next ones, a second away, supersede these.
    if (reason) this.logger.warn(`dropped ${announcements.length} announcement(s) from ${batch.topic}: ${reason}`);
    const last = batch.messages.at(-1);
    if (last) resolveOffset(last.offset);
  }
}
