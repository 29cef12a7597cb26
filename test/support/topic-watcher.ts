/** Reads a topic under a consumer group of its own, so the test sees what the real consumer sees too. */
import { randomUUID } from 'node:crypto';
import { Consumer, Kafka, logLevel } from 'kafkajs';
import { Envelope, parseEnvelope } from '../../src/transport/kafka/envelope';
import { kafkaBrokers } from './infra';

export class TopicWatcher {
  readonly seen: Envelope[] = [];
  private readonly consumer: Consumer;
  private waiters: { predicate: (seen: readonly Envelope[]) => boolean; resolve: () => void }[] = [];

  constructor(private readonly topic: string) {
    const kafka = new Kafka({ clientId: `watch-${randomUUID().slice(0, 8)}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
    this.consumer = kafka.consumer({ groupId: `watch-${randomUUID()}`, maxWaitTimeInMs: 20 });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    const joined = new Promise<void>((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        const parsed = parseEnvelope(message.value);
        if (!parsed.ok) return;
        this.seen.push(parsed.envelope);
        for (const waiter of [...this.waiters]) {
          if (waiter.predicate(this.seen)) {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
      },
    });
    await joined;
  }

  count(predicate: (e: Envelope) => boolean): number {
    return this.seen.filter(predicate).length;
  }

  /** Resolves once at least `n` messages matching `predicate` have been seen. */
  waitForCount(predicate: (e: Envelope) => boolean, n: number, timeoutMs = 30_000): Promise<void> {
    const check = (seen: readonly Envelope[]): boolean => seen.filter(predicate).length >= n;
    if (check(this.seen)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`saw ${this.count(predicate)} of ${n} expected messages on ${this.topic}`)), timeoutMs);
      this.waiters.push({ predicate: check, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
