/**
 * A participant played by the test itself over the real Kafka broker, speaking the wire
 * protocol of docs/protocol.md directly. It lets a test hold a vote back, answer twice, or
 * never answer at all.
 */
import { randomUUID } from 'node:crypto';
import { Consumer, Kafka, Producer, logLevel } from 'kafkajs';
import { Envelope, EnvelopeOf, parseEnvelope } from '../../src/transport/kafka/envelope';
import { topicsFor } from '../../src/transport/kafka/topics';
import { kafkaBrokers } from './infra';

export interface FakeParticipantOptions {
  readonly autoAck?: boolean;
  /** Runs on every message as it arrives, before anything else sees it. */
  readonly onMessage?: (envelope: Envelope) => Promise<void>;
}

export class FakeParticipant {
  readonly received: Envelope[] = [];
  private readonly kafka = new Kafka({ clientId: `fake-${randomUUID().slice(0, 8)}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  private readonly producer: Producer = this.kafka.producer({ allowAutoTopicCreation: true });
  private readonly consumer: Consumer;
  private readonly topics;
  private announcer: NodeJS.Timeout | undefined;
  private waiters: { predicate: (e: Envelope) => boolean; resolve: (e: Envelope) => void }[] = [];

  constructor(
    readonly name: string,
    prefix: string,
    private readonly options: FakeParticipantOptions = {},
  ) {
    this.topics = topicsFor(prefix);
    this.consumer = this.kafka.consumer({ groupId: `${prefix}.rm.${name}`, maxWaitTimeInMs: 20, sessionTimeout: 6000, heartbeatInterval: 1000 });
  }

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: this.topics.participant(this.name), numPartitions: 1 }] });
    await admin.disconnect();
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topics.participant(this.name), fromBeginning: true });
    const joined = new Promise<void>((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        const parsed = parseEnvelope(message.value);
        if (!parsed.ok) return;
        await this.options.onMessage?.(parsed.envelope);
        this.received.push(parsed.envelope);
        for (const waiter of [...this.waiters]) {
          if (waiter.predicate(parsed.envelope)) {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            waiter.resolve(parsed.envelope);
          }
        }
        if (this.options.autoAck && (parsed.envelope.type === 'COMMIT' || parsed.envelope.type === 'ABORT')) {
          await this.reply(parsed.envelope.txnId, 'ACK', { outcome: parsed.envelope.type });
        }
      },
    });
    await joined;
    await this.announce();
    this.announcer = setInterval(() => void this.announce().catch(() => undefined), 500);
  }

  /** Stops announcing but keeps listening, as a participant that hangs would. */
  stopAnnouncing(): void {
    clearInterval(this.announcer);
  }

  async stop(): Promise<void> {
    this.stopAnnouncing();
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  next<T extends Envelope['type']>(type: T, txnId: string, timeoutMs = 30_000): Promise<EnvelopeOf<T>> {
    const predicate = (e: Envelope): boolean => e.type === type && e.txnId === txnId;
    const seen = this.received.find(predicate);
    if (seen) return Promise.resolve(seen as EnvelopeOf<T>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} received no ${type} for ${txnId} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ predicate, resolve: (e) => { clearTimeout(timer); resolve(e as EnvelopeOf<T>); } });
    });
  }

  vote(txnId: string, vote: 'YES' | 'NO', reason?: string): Promise<void> {
    return this.reply(txnId, 'VOTE', reason ? { vote, reason } : { vote });
  }

  async reply(txnId: string, type: 'VOTE' | 'ACK' | 'QUERY', body: object): Promise<void> {
    const envelope = { v: 1, type, txnId, protocol: '2pc', from: this.name, epoch: 1, sentAt: new Date().toISOString(), body };
    await this.producer.send({ topic: this.topics.coordinator, acks: -1, messages: [{ key: txnId, value: JSON.stringify(envelope) }] });
  }

  /** Writes raw bytes to a topic, for malformed-message tests. */
  async sendRaw(topic: string, value: string, key = 'raw'): Promise<void> {
    await this.producer.send({ topic, acks: -1, messages: [{ key, value }] });
  }

  private async announce(): Promise<void> {
    const envelope = {
      v: 1,
      type: 'ANNOUNCE',
      txnId: '',
      protocol: '2pc',
      from: this.name,
      epoch: 0,
      sentAt: new Date().toISOString(),
      body: { name: this.name, protocols: ['2pc'], topic: this.topics.participant(this.name), instanceId: 'fake' },
    };
    await this.producer.send({ topic: this.topics.participants, acks: -1, messages: [{ key: this.name, value: JSON.stringify(envelope) }] });
  }
}
