/**
 * A participant written in another language joins over the wire protocol alone: the Python
 * ledger of examples/python-participant (kafka-python and SQLite, built from docs/protocol.md)
 * takes part in transactions with the TypeScript inventory service, votes NO over its limit,
 * dead-letters what it cannot read, and learns the outcome after a SIGKILL while in doubt.
 */
import { Consumer, Kafka, Producer, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForCompletion } from '../support/checkout';
import { Cluster } from '../support/cluster';
import { LEDGER_LIMIT, LEDGER_NAME, PythonLedger } from '../support/python-ledger';
import { FakeParticipant } from '../support/fake-participant';
import { kafkaBrokers } from '../support/infra';
import { waitUntil } from '../support/processes';
import { TopicWatcher } from '../support/topic-watcher';

const NAME = LEDGER_NAME;
const LIMIT = LEDGER_LIMIT;

const cluster = new Cluster({ services: ['inventory'], inventorySeed: 'sku-1:100' });
const ledger = new PythonLedger(cluster, 'py');
// Topic names as docs/protocol.md section 2 gives them.
const topics = {
  coordinator: `${cluster.prefix}.coordinator`,
  ledger: `${cluster.prefix}.rm.${NAME}`,
  dlq: `${cluster.prefix}.dlq`,
};
let coordinatorTopic: TopicWatcher;

interface LedgerDump {
  entries: Record<string, { amount: number; state: string }>;
  log: Record<string, { state: string; epoch: number; reason: string | null }>;
}

function transaction(amount: number, extra: { name: string; payload?: unknown }[] = [], timeoutMs?: number) {
  return cluster.api('POST', '/v1/transactions?waitMs=30000', {
    protocol: '2pc',
    ...(timeoutMs ? { timeoutMs } : {}),
    participants: [
      { name: 'inventory', payload: { sku: 'sku-1', qty: 1 } },
      { name: NAME, payload: { amount } },
      ...extra,
    ],
  });
}

const completed = (id: string): Promise<any> => waitForCompletion(cluster, id, { timeoutMs: 60_000 });

beforeAll(async () => {
  ledger.setup();
  await cluster.start();
  coordinatorTopic = new TopicWatcher(topics.coordinator);
  await coordinatorTopic.start();
  await ledger.start();
});

afterAll(async () => {
  await ledger.stop();
  await coordinatorTopic?.stop();
  await cluster.stop();
});

describe('a Python participant built from docs/protocol.md', () => {
  it('is listed live by the coordinator', async () => {
    const { body } = await cluster.api<{ name: string; live: boolean }[]>('GET', '/v1/participants');
    const entry = body.find((p) => p.name === NAME);
    expect(entry).toMatchObject({ name: NAME, live: true });
  });

  it('commits a transaction together with the inventory service', async () => {
    const { status, body } = await transaction(250);
    expect(status).toBe(201);
    expect(body).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT' });
    const done = await completed(body.id);
    expect(done.participants.find((p: { name: string }) => p.name === NAME)).toMatchObject({ vote: 'YES', acked: true });
    const state = ledger.dump<LedgerDump>();
    expect(state.entries[body.id]).toEqual({ amount: 250, state: 'committed' });
    expect(state.log[body.id]).toMatchObject({ state: 'committed' });
    const [stock] = await cluster.query('inventory', `SELECT available, reserved, sold FROM stock WHERE sku = 'sku-1'`);
    expect(stock).toEqual({ available: 99, reserved: 0, sold: 1 });
  });

  it('aborts over its limit with its NO reason in the decision', async () => {
    const { body } = await transaction(5_000);
    expect(body).toMatchObject({ state: 'ABORTED', decision: 'ABORT' });
    expect(body.decisionReason).toMatch(new RegExp(`${NAME} voted no: amount 5000 exceeds the ledger limit of ${LIMIT}`));
    await completed(body.id);
    const state = ledger.dump<LedgerDump>();
    expect(state.entries[body.id]).toBeUndefined();
    expect(state.log[body.id]).toMatchObject({ state: 'aborted' });
    const [stock] = await cluster.query('inventory', `SELECT available, reserved, sold FROM stock WHERE sku = 'sku-1'`);
    expect(stock).toEqual({ available: 99, reserved: 0, sold: 1 });
  });

  it('dead-letters what it cannot handle, unchanged and with the reason, and keeps working', async () => {
    const kafka = new Kafka({ clientId: `dlq-test-${cluster.prefix}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
    const producer: Producer = kafka.producer();
    const consumer: Consumer = kafka.consumer({ groupId: `${cluster.prefix}.dlq-watch`, maxWaitTimeInMs: 20 });
    const dead: { key: string; value: string | null; headers: Record<string, string> }[] = [];
    await producer.connect();
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: topics.dlq, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
          dead.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? null, headers });
        },
      });
      const vote = JSON.stringify({ v: 1, type: 'VOTE', txnId: 'dlq-2', protocol: '2pc', from: 'someone', epoch: 1, sentAt: new Date().toISOString(), body: { vote: 'YES' } });
      const badPrepare = JSON.stringify({ v: 1, type: 'PREPARE', txnId: 'dlq-3', protocol: '2pc', from: 'someone', epoch: 1, sentAt: new Date().toISOString(), body: { payload: { amount: 1 } } });
      await producer.send({
        topic: topics.ledger,
        acks: -1,
        messages: [
          { key: 'dlq-1', value: 'not json at all' },
          { key: 'dlq-2', value: vote },
          { key: 'dlq-3', value: badPrepare },
          { key: 'dlq-4', value: null },
        ],
      });
      await waitUntil('four dead letters', async () => dead.length >= 4, 30_000);
      const byKey = Object.fromEntries(dead.map((d) => [d.key, d]));
      expect(byKey['dlq-1']).toMatchObject({ value: 'not json at all', headers: { 'x-dlq-source-topic': topics.ledger } });
      expect(byKey['dlq-1'].headers['x-dlq-reason']).toMatch(/not JSON/);
      expect(byKey['dlq-2']).toMatchObject({ value: vote, headers: { 'x-dlq-source-topic': topics.ledger } });
      expect(byKey['dlq-2'].headers['x-dlq-reason']).toMatch(/VOTE does not belong/);
      expect(byKey['dlq-3'].headers['x-dlq-reason']).toMatch(/timeoutMs/);
      expect(byKey['dlq-4']).toMatchObject({ value: null });
      expect(coordinatorTopic.count((e) => ['dlq-2', 'dlq-3'].includes(e.txnId))).toBe(0);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
    const { body } = await transaction(10);
    expect(body.state).toBe('COMMITTED');
    await completed(body.id);
  });

  it('learns the outcome after a SIGKILL while in doubt, by QUERY when it restarts', async () => {
    const gate = new FakeParticipant('gate', cluster.prefix, { autoAck: true });
    await gate.start();
    try {
      await cluster.waitForLive('gate');
      const pending = transaction(100, [{ name: 'gate' }], 60_000);
      const prepare = await waitUntil('a PREPARE for the gate', async () => gate.received.find((e) => e.type === 'PREPARE'));
      const txnId = prepare.txnId;
      await waitUntil(`${NAME} to vote YES`, async () => {
        const { body } = await cluster.api('GET', `/v1/transactions/${txnId}`);
        return body.participants.find((p: { name: string }) => p.name === NAME).vote === 'YES';
      });
      await ledger.process!.kill('SIGKILL');
      // Its YES was durable before it left: the pending entry is on disk.
      expect(ledger.dump<LedgerDump>().entries[txnId]).toEqual({ amount: 100, state: 'pending' });

      await gate.vote(txnId, 'YES');
      expect((await pending).body).toMatchObject({ id: txnId, state: 'COMMITTED' });
      expect(ledger.dump<LedgerDump>().entries[txnId].state).toBe('pending');

      const isQuery = (e: { type: string; txnId: string; from: string }) => e.type === 'QUERY' && e.txnId === txnId && e.from === NAME;
      await ledger.start();
      await coordinatorTopic.waitForCount(isQuery, 1);
      const done = await completed(txnId);
      expect(done.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
      const state = ledger.dump<LedgerDump>();
      expect(state.entries[txnId]).toEqual({ amount: 100, state: 'committed' });
      expect(state.log[txnId].state).toBe('committed');
    } finally {
      await gate.stop();
    }
  });

  it('stops cleanly on SIGTERM', async () => {
    const running = ledger.process!;
    running.child.kill('SIGTERM');
    expect(await running.exited).toEqual({ code: 0, signal: null });
  });
});
