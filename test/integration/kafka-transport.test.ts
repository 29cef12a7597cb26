/**
 * The coordinator's Kafka transport on the real broker: Nest's Kafka server with prefixed
 * topics delivers envelopes to @EventPattern handlers, and the publisher's batches arrive
 * with their keys and trace headers.
 */
import { randomUUID } from 'node:crypto';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, KafkaContext, Payload } from '@nestjs/microservices';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/app-config';
import { Envelope, parseEnvelope } from '../../src/transport/kafka/envelope';
import { KafkaPublisher } from '../../src/transport/kafka/kafka-publisher';
import { PrefixedKafkaServer } from '../../src/transport/kafka/prefixed-kafka.server';
import { topicsFor } from '../../src/transport/kafka/topics';
import { adminDatabaseUrl, kafkaBrokers, uniqueSuffix } from '../support/infra';

const prefix = `k${uniqueSuffix()}`;
const topics = topicsFor(prefix);
const received: { value: unknown; key: string | undefined; traceparent: string | undefined }[] = [];
let notify: (() => void) | undefined;

@Controller()
class ProbeController {
  @EventPattern('coordinator')
  handle(@Payload() value: unknown, @Ctx() context: KafkaContext): void {
    const message = context.getMessage();
    received.push({ value, key: message.key?.toString(), traceparent: message.headers?.traceparent?.toString() });
    notify?.();
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

let server: INestMicroservice;
let publisher: KafkaPublisher;

beforeAll(async () => {
  const config = loadConfig({ DATABASE_URL: adminDatabaseUrl(), KAFKA_BROKERS: kafkaBrokers().join(','), KAFKA_TOPIC_PREFIX: prefix, KAFKA_PARTITIONS: '3' });
  publisher = new KafkaPublisher(config, topics);
  await publisher.onModuleInit();
  server = await NestFactory.createMicroservice(ProbeModule, {
    logger: false,
    strategy: new PrefixedKafkaServer(
      { client: { brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }, consumer: { groupId: `${prefix}.probe`, maxWaitTimeInMs: 20 }, subscribe: { fromBeginning: true }, postfixId: '' },
      prefix,
    ),
  });
  // The consumer has joined its group once listen resolves.
  await server.listen();
});

afterAll(async () => {
  await server?.close();
  await publisher?.onApplicationShutdown();
});

const envelope = (txnId: string, type: 'VOTE' | 'ACK'): Envelope =>
  type === 'VOTE'
    ? { v: 1, type, txnId, protocol: '2pc', from: 'inventory', epoch: 1, sentAt: new Date().toISOString(), body: { vote: 'YES' } }
    : { v: 1, type, txnId, protocol: '2pc', from: 'inventory', epoch: 1, sentAt: new Date().toISOString(), body: { outcome: 'COMMIT' } };

async function receivedCount(n: number): Promise<void> {
  while (received.length < n) await new Promise<void>((resolve) => (notify = resolve));
}

describe('Kafka transport', () => {
  it('creates the coordinator topics with the configured partitions', async () => {
    const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [topics.coordinator, topics.participants, topics.deadLetter] });
    await admin.disconnect();
    expect(metadata.topics.map((t) => t.partitions.length)).toEqual([3, 3, 3]);
  });

  it('delivers a published batch to the handler of the logical pattern, with key and traceparent', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const [a, b] = [randomUUID(), randomUUID()];
    await publisher.publish([
      { topic: topics.coordinator, envelope: envelope(a, 'VOTE'), headers: { traceparent } },
      { topic: topics.coordinator, envelope: envelope(b, 'ACK') },
    ]);
    await receivedCount(2);
    const byKey = new Map(received.map((r) => [r.key, r]));
    expect(byKey.get(a)?.traceparent).toBe(traceparent);
    const parsed = parseEnvelope(byKey.get(b)?.value);
    expect(parsed.ok && parsed.envelope.type).toBe('ACK');
  });

  it('dead-letters with the reason and the source topic in headers, keeping the original bytes', async () => {
    const kafka = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${prefix}.dlq-check`, maxWaitTimeInMs: 20 });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.deadLetter, fromBeginning: true });
    const got = new Promise<{ value: string; reason: string; source: string }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) =>
          resolve({ value: message.value!.toString(), reason: String(message.headers?.['x-dlq-reason']), source: String(message.headers?.['x-dlq-source-topic']) }),
      });
    });
    await publisher.deadLetter(topics.coordinator, 'k1', '{"v":2}', 'unsupported envelope version 2; expected 1');
    expect(await got).toEqual({ value: '{"v":2}', reason: 'unsupported envelope version 2; expected 1', source: topics.coordinator });
    await consumer.disconnect();
  });
});
