/**
 * Outbound Kafka. This uses kafkajs directly rather than Nest's ClientKafka because the
 * coordinator must know that a batch of protocol messages (to several topics, each with its
 * own key and trace headers) reached the broker before it moves on, which `sendBatch` with
 * acks=-1 gives in one awaited call. It also creates the coordinator's topics at start.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { Admin, CompressionTypes, IHeaders, Kafka, Producer, TopicMessages, logLevel } from 'kafkajs';
import { PartitionOwnership } from './partition-ownership';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { Envelope, encodeEnvelope } from './envelope';
import { HEADER_DLQ_REASON, HEADER_DLQ_SOURCE_TOPIC, Topics } from './topics';
import { KAFKA_TOPICS } from './kafka.constants';

export interface OutboundMessage {
  readonly topic: string;
  readonly envelope: Envelope;
  readonly headers?: IHeaders;
}

@Injectable()
export class KafkaPublisher implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(KafkaPublisher.name);
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private connected = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KAFKA_TOPICS) private readonly topics: Topics,
    @Optional() private readonly ownership?: PartitionOwnership,
  ) {
    this.kafka = new Kafka({ clientId: `coordinator-${config.coordinatorId}`, brokers: [...config.kafkaBrokers], logLevel: logLevel.WARN });
    this.producer = this.kafka.producer({ allowAutoTopicCreation: true, idempotent: false });
    this.admin = this.kafka.admin();
    this.producer.on(this.producer.events.DISCONNECT, () => (this.connected = false));
  }

  async onModuleInit(): Promise<void> {
    await this.admin.connect();
    await this.ensureTopics();
    // The topic may predate this configuration: its real partition count decides where transactions live.
    const [coordinatorTopic] = (await this.admin.fetchTopicMetadata({ topics: [this.topics.coordinator] })).topics;
    this.ownership?.setPartitionCount(coordinatorTopic.partitions.length);
    await this.admin.disconnect();
    await this.producer.connect();
    this.connected = true;
  }

  async onApplicationShutdown(): Promise<void> {
    this.connected = false;
    await this.producer.disconnect();
  }

  isConnected(): boolean {
    return this.connected;
  }

  async publish(messages: readonly OutboundMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const byTopic = new Map<string, TopicMessages>();
    for (const message of messages) {
      const entry = byTopic.get(message.topic) ?? { topic: message.topic, messages: [] };
      entry.messages.push({ key: message.envelope.txnId, value: encodeEnvelope(message.envelope), headers: message.headers });
      byTopic.set(message.topic, entry);
    }
    await this.producer.sendBatch({ acks: -1, compression: CompressionTypes.None, topicMessages: [...byTopic.values()] });
  }

  async deadLetter(sourceTopic: string, key: Buffer | string | null, value: Buffer | string | null, reason: string): Promise<void> {
    this.logger.warn(`dead-lettering a message from ${sourceTopic}: ${reason}`);
    await this.producer.send({
      topic: this.topics.deadLetter,
      acks: -1,
      messages: [{ key, value, headers: { [HEADER_DLQ_REASON]: reason, [HEADER_DLQ_SOURCE_TOPIC]: sourceTopic } }],
    });
  }

  private async ensureTopics(): Promise<void> {
    const existing = new Set(await this.admin.listTopics());
    const wanted = [this.topics.coordinator, this.topics.participants, this.topics.deadLetter].filter((t) => !existing.has(t));
    if (wanted.length === 0) return;
    await this.admin.createTopics({
      waitForLeaders: true,
      topics: wanted.map((topic) => ({ topic, numPartitions: this.config.kafkaPartitions })),
    });
  }
}
