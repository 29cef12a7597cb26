/**
 * Participant announcements on their own consumer, against the real broker and database: a
 * batch of announcements becomes one row per participant (the newest one wins), stamped by
 * the database's clock, and a participant counts as live or stale by that clock alone, however
 * far the sender's own sentAt is off.
 */
import { Kafka, Producer, logLevel } from 'kafkajs';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { decisionLogDataSourceOptions, runMigrations } from '../../src/decision-log/data-source';
import { AnnouncementConsumer } from '../../src/registry/announcement-consumer';
import { ParticipantRegistry } from '../../src/registry/participant-registry.service';
import { KafkaPublisher } from '../../src/transport/kafka/kafka-publisher';
import { topicsFor } from '../../src/transport/kafka/topics';
import { freshDatabase, kafkaBrokers, uniqueSuffix } from '../support/infra';

const prefix = `a${uniqueSuffix()}`;
const topics = topicsFor(prefix);

let config: AppConfig;
let dataSource: DataSource;
let publisher: KafkaPublisher;
let registry: ParticipantRegistry;
let consumer: AnnouncementConsumer;
let producer: Producer;

beforeAll(async () => {
  const url = await freshDatabase(`announce_${uniqueSuffix()}`);
  await runMigrations(url);
  dataSource = new DataSource(decisionLogDataSourceOptions(url));
  await dataSource.initialize();
  config = loadConfig({ DATABASE_URL: url, KAFKA_BROKERS: kafkaBrokers().join(','), KAFKA_TOPIC_PREFIX: prefix, KAFKA_PARTITIONS: '2', PARTICIPANT_TTL_MS: '60000', COORDINATOR_ID: 'c1' });
  publisher = new KafkaPublisher(config, topics);
  await publisher.onModuleInit();
  registry = new ParticipantRegistry(config, dataSource);
  await registry.onModuleInit();
  consumer = new AnnouncementConsumer(config, topics, registry, publisher);
  await consumer.onApplicationBootstrap();
  producer = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  await consumer?.onApplicationShutdown();
  registry?.onApplicationShutdown();
  await publisher?.onApplicationShutdown();
  await dataSource?.destroy();
});

const announce = (name: string, instanceId: string, sentAt: string): { key: string; value: string } => ({
  key: name,
  value: JSON.stringify({ v: 1, type: 'ANNOUNCE', txnId: '', protocol: '2pc', from: name, epoch: 0, sentAt, body: { name, protocols: ['2pc'], topic: `${prefix}.rm.${name}`, instanceId } }),
});

async function rowOf(name: string): Promise<{ instance_id: string; age_ms: number } | undefined> {
  const [row] = await dataSource.query(`SELECT instance_id, (extract(epoch FROM now() - last_seen_at) * 1000)::float8 AS age_ms FROM participants WHERE name = $1`, [name]);
  return row;
}

describe('announcement consumer', () => {
  it('records the newest announcement of each participant, stamped by the database clock', async () => {
    // The senders' clocks are a day behind and a year ahead; neither may decide liveness.
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
    const yearAhead = new Date(Date.now() + 365 * 86_400_000).toISOString();
    await producer.send({
      topic: topics.participants,
      acks: -1,
      messages: [announce('orders', 'o1', dayAgo), announce('orders', 'o2', dayAgo), announce('payments', 'p1', yearAhead)],
    });
    // The registry reads the rows back in its availability check; wait for both to land.
    let orders = await registry.availability('orders', '2pc');
    let payments = await registry.availability('payments', '2pc');
    while (!orders.ok || !payments.ok || orders.participant.instanceId !== 'o2') {
      await new Promise<void>((resolve) => setImmediate(resolve));
      [orders, payments] = [await registry.availability('orders', '2pc'), await registry.availability('payments', '2pc')];
    }
    expect(registry.instanceOf('orders')).toBe('o2');
    expect(registry.topicOf('payments')).toBe(`${prefix}.rm.payments`);
    for (const name of ['orders', 'payments']) {
      const row = await rowOf(name);
      expect(row?.age_ms).toBeGreaterThanOrEqual(0);
      expect(row?.age_ms).toBeLessThan(60_000);
    }
  });

  it('judges a participant stale by the database clock', async () => {
    await registry.recordAnnouncement({ name: 'inventory', protocols: ['2pc'], topic: `${prefix}.rm.inventory`, instanceId: 'i1' });
    expect((await registry.availability('inventory', '2pc')).ok).toBe(true);
    // Two minutes of silence, as the database sees it: past the one-minute TTL.
    await dataSource.query(`UPDATE participants SET last_seen_at = now() - interval '2 minutes' WHERE name = 'inventory'`);
    // list() reads the rows again (as the periodic sweep does); availability then answers from them.
    const listed = (await registry.list()).find((p) => p.name === 'inventory');
    expect(listed?.live).toBe(false);
    expect(await registry.availability('inventory', '2pc')).toEqual({ ok: false, reason: 'stale' });
    await registry.recordAnnouncement({ name: 'inventory', protocols: ['2pc'], topic: `${prefix}.rm.inventory`, instanceId: 'i1' });
    expect((await registry.availability('inventory', '2pc')).ok).toBe(true);
  });

  it('dead-letters what is not an announcement and keeps reading', async () => {
    await producer.send({ topic: topics.participants, acks: -1, messages: [{ key: 'junk', value: '{"v":1' }, announce('shipping', 's1', new Date().toISOString())] });
    let shipping = await registry.availability('shipping', '2pc');
    while (!shipping.ok) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      shipping = await registry.availability('shipping', '2pc');
    }
    expect(shipping.participant.instanceId).toBe('s1');
  });
});
