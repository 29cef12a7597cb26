/**
 * Kafka plumbing of a participant: topic creation, replies to the coordinator, announcements
 * and dead letters, all with acks=-1 so that "sent" means "on every in-sync replica".
 * Everything speaks the envelope of docs/protocol.md.
 */
import { Admin, IHeaders, Kafka, KafkaMessage, LogEntry, Partitioners, Producer, logLevel } from 'kafkajs';
import { Envelope, encodeEnvelope } from '../transport/kafka/envelope';
import { HEADER_DLQ_REASON, HEADER_DLQ_SOURCE_TOPIC, HEADER_TRACEPARENT, Topics } from '../transport/kafka/topics';
import { ParticipantReply } from './participant.driver';
import { ParticipantLogger } from './participant-sdk.types';

export interface ParticipantKafkaOptions {
  readonly name: string;
  readonly instanceId: string;
  readonly brokers: readonly string[];
  readonly topics: Topics;
  readonly topicPartitions: number;
  readonly logger: ParticipantLogger;
  /** What the announcement says this participant speaks; `['2pc']` unless given. */
  readonly protocols?: readonly string[];
}

export class ParticipantKafkaTransport {
  readonly kafka: Kafka;
  private readonly producer: Producer;

  constructor(private readonly options: ParticipantKafkaOptions) {
    this.kafka = new Kafka({
      clientId: `participant-${options.name}-${options.instanceId.slice(0, 8)}`,
      brokers: [...options.brokers],
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => forwardKafkaLog(options.logger, entry),
    });
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  }

  /** The topic the coordinator sends this participant's orders to. */
  get ownTopic(): string {
    return this.options.topics.participant(this.options.name);
  }

  async connect(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const { topics } = this.options;
      await ensureTopics(admin, [this.ownTopic, topics.coordinator, topics.participants, topics.deadLetter], this.options.topicPartitions);
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }

  async sendReplies(replies: readonly ParticipantReply[]): Promise<void> {
    const sentAt = new Date().toISOString();
    const messages = replies.map((reply) => {
      const envelope = { v: 1, type: reply.type, txnId: reply.txnId, protocol: '2pc', from: this.options.name, epoch: reply.epoch, sentAt, body: reply.body } as Envelope;
      const headers: IHeaders | undefined = reply.traceparent ? { [HEADER_TRACEPARENT]: reply.traceparent } : undefined;
      return { key: reply.txnId, value: encodeEnvelope(envelope), headers };
    });
    await this.producer.send({ topic: this.options.topics.coordinator, acks: -1, messages });
  }

  /** Sends ready envelopes, each to its own topic, keyed by transaction id (Paxos Commit votes go to several acceptors). */
  async sendEnvelopes(messages: readonly { readonly topic: string; readonly envelope: Envelope; readonly traceparent?: string }[]): Promise<void> {
    const topicMessages = new Map<string, { key: string; value: string; headers?: IHeaders }[]>();
    for (const { topic, envelope, traceparent } of messages) {
      const list = topicMessages.get(topic) ?? [];
      list.push({ key: envelope.txnId, value: encodeEnvelope(envelope), headers: traceparent ? { [HEADER_TRACEPARENT]: traceparent } : undefined });
      topicMessages.set(topic, list);
    }
    await this.producer.sendBatch({ acks: -1, topicMessages: [...topicMessages].map(([topic, list]) => ({ topic, messages: list })) });
  }

  async announce(): Promise<void> {
    const { name, instanceId } = this.options;
    const envelope: Envelope = {
      v: 1,
      type: 'ANNOUNCE',
      txnId: '',
      protocol: '2pc',
      from: name,
      epoch: 0,
      sentAt: new Date().toISOString(),
      body: { name, protocols: [...(this.options.protocols ?? ['2pc'])], topic: this.ownTopic, instanceId },
    };
    await this.producer.send({ topic: this.options.topics.participants, acks: -1, messages: [{ key: name, value: encodeEnvelope(envelope) }] });
  }

  /** Moves a message this participant cannot handle to the dead-letter topic, unchanged. */
  async deadLetter(sourceTopic: string, message: KafkaMessage, reason: string): Promise<void> {
    this.options.logger.warn(`dead-lettering a message from ${sourceTopic} (offset ${message.offset}): ${reason}`);
    await this.producer.send({
      topic: this.options.topics.deadLetter,
      acks: -1,
      messages: [{ key: message.key, value: message.value, headers: { [HEADER_DLQ_REASON]: reason, [HEADER_DLQ_SOURCE_TOPIC]: sourceTopic } }],
    });
  }
}

export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

async function ensureTopics(admin: Admin, wanted: readonly string[], numPartitions: number): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = [...new Set(wanted)].filter((topic) => !existing.has(topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions })) });
  } catch (error) {
    // Another process may have created them in the meantime; only a topic still missing is a failure.
    const now = new Set(await admin.listTopics());
    if (missing.some((topic) => !now.has(topic))) throw error;
  }
}

function forwardKafkaLog(logger: ParticipantLogger, entry: LogEntry): void {
  const text = `kafka${entry.namespace ? ` ${entry.namespace}` : ''}: ${entry.log.message}`;
  if (entry.level === logLevel.ERROR || entry.level === logLevel.NOTHING) logger.error(text);
  else if (entry.level === logLevel.WARN) logger.warn(text);
  else logger.debug?.(text);
}
