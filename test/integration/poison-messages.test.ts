/**
 * One malformed message must never stop a partition. On the real broker and database: the
 * coordinator's Kafka controller reads a VOTE whose txnId is not a UUID, then a VOTE whose
 * reason Postgres refuses to store (a NUL byte: SQLSTATE 22021), then a good VOTE, all on the
 * one partition of the coordinator topic. The first two are dead-lettered with their reasons
 * and the good one behind them is recorded in the decision log.
 */
import { INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { Kafka, Producer, logLevel } from 'kafkajs';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/app-config';
import { PROTOCOL_DRIVERS, ProtocolDriver, ProtocolDrivers } from '../../src/coordinator/protocol-driver';
import { decisionLogDataSourceOptions, runMigrations } from '../../src/decision-log/data-source';
import { GroupCommitter } from '../../src/decision-log/group-commit';
import { TypeOrmDecisionLogRepository } from '../../src/decision-log/typeorm-decision-log.repository';
import { CoordinatorMessagesController } from '../../src/coordinator/coordinator-messages.controller';
import { Envelope } from '../../src/transport/kafka/envelope';
import { KafkaPublisher } from '../../src/transport/kafka/kafka-publisher';
import { PrefixedKafkaServer } from '../../src/transport/kafka/prefixed-kafka.server';
import { HEADER_DLQ_REASON, topicsFor } from '../../src/transport/kafka/topics';
import { freshDatabase, kafkaBrokers, uniqueSuffix } from '../support/infra';

const prefix = `p${uniqueSuffix()}`;
const topics = topicsFor(prefix);

let dataSource: DataSource;
let log: TypeOrmDecisionLogRepository;
let publisher: KafkaPublisher;
let server: INestMicroservice;
let producer: Producer;
const dlq: { key: string; value: string; reason: string }[] = [];
const recorded: string[] = [];
const waiters: (() => void)[] = [];
const changed = (): void => waiters.splice(0).forEach((wake) => wake());

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise<void>((resolve) => waiters.push(resolve));
}

/** The 2pc driver's part that matters here: a VOTE is written to the real decision log. */
const voteRecorder: ProtocolDriver = {
  protocol: '2pc',
  async deliver(envelope: Envelope): Promise<boolean> {
    if (envelope.type !== 'VOTE') return false;
    await log.appendVote(envelope.txnId, envelope.from, envelope.body.vote, envelope.body.reason);
    recorded.push(envelope.txnId);
    changed();
    return true;
  },
  begin: async () => undefined,
  adopt: async () => undefined,
  release: () => 0,
  expect: () => undefined,
  unexpect: () => undefined,
  isActive: () => false,
  activeCount: () => 0,
  requestAbort: async () => undefined,
};

beforeAll(async () => {
  const url = await freshDatabase(`poison_${uniqueSuffix()}`);
  await runMigrations(url);
  dataSource = new DataSource(decisionLogDataSourceOptions(url));
  await dataSource.initialize();
  log = new TypeOrmDecisionLogRepository(dataSource, new GroupCommitter(dataSource, 16));
  // One partition, so the good message really is behind the bad ones.
  const config = loadConfig({ DATABASE_URL: url, KAFKA_BROKERS: kafkaBrokers().join(','), KAFKA_TOPIC_PREFIX: prefix, KAFKA_PARTITIONS: '1' });
  publisher = new KafkaPublisher(config, topics);
  await publisher.onModuleInit();

  @Module({
    controllers: [CoordinatorMessagesController],
    providers: [{ provide: KafkaPublisher, useValue: publisher }, { provide: PROTOCOL_DRIVERS, useValue: [voteRecorder] }, ProtocolDrivers],
  })
  class CoordinatorProbeModule {}

  server = await NestFactory.createMicroservice(CoordinatorProbeModule, {
    logger: false,
    strategy: new PrefixedKafkaServer(
      { client: { brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }, consumer: { groupId: `${prefix}.coordinators`, maxWaitTimeInMs: 20 }, subscribe: { fromBeginning: true }, postfixId: '' },
      prefix,
    ),
  });
  await server.listen();

  const kafka = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const watcher = kafka.consumer({ groupId: `${prefix}.dlq-watch`, maxWaitTimeInMs: 20 });
  await watcher.connect();
  await watcher.subscribe({ topic: topics.deadLetter, fromBeginning: true });
  await watcher.run({
    eachMessage: async ({ message }) => {
      dlq.push({ key: String(message.key), value: String(message.value), reason: String(message.headers?.[HEADER_DLQ_REASON]) });
      changed();
    },
  });
  afterAll(() => watcher.disconnect());
  producer = kafka.producer();
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  await server?.close();
  await publisher?.onApplicationShutdown();
  await dataSource?.destroy();
});

const vote = (txnId: string, body: Record<string, unknown>): string =>
  JSON.stringify({ v: 1, type: 'VOTE', txnId, protocol: '2pc', from: 'inventory', epoch: 1, sentAt: new Date().toISOString(), body });

describe('poison messages on the coordinator topic', () => {
  it('dead-letters them with a reason and goes on to the good message behind them', async () => {
    const txn = await log.createTransaction({
      id: randomUUID(),
      protocol: '2pc',
      participants: [{ name: 'inventory', payload: null }],
      timeoutMs: 10_000,
      idempotencyKey: null,
      requestHash: 'h',
      ownerId: 'c1',
      traceContext: null,
      partition: 0,
      leaseMs: 5000,
    });
    const txnId = txn.transaction.id;
    const nulReason = randomUUID();
    const notUuid = vote('not-a-uuid', { vote: 'YES' });
    await producer.send({
      topic: topics.coordinator,
      acks: -1,
      messages: [
        { key: 'not-a-uuid', value: notUuid },
        { key: nulReason, value: vote(nulReason, { vote: 'NO', reason: 'out\u0000of stock' }) },
        { key: txnId, value: vote(txnId, { vote: 'YES' }) },
      ],
    });

    await until(() => recorded.includes(txnId) && dlq.length >= 2);
    expect(dlq.find((d) => d.key === 'not-a-uuid')?.reason).toBe('txnId of VOTE must be a UUID, got "not-a-uuid"');
    expect(JSON.parse(dlq.find((d) => d.key === 'not-a-uuid')?.value ?? 'null')).toEqual(JSON.parse(notUuid));
    expect(dlq.find((d) => d.key === nulReason)?.reason).toMatch(/^handler failed: .*\(22021\)$/);
    expect(recorded).toEqual([txnId]);
    const [row] = await dataSource.query(`SELECT vote FROM transaction_participants WHERE txn_id = $1`, [txnId]);
    expect(row).toEqual({ vote: 'YES' });
  });
});
