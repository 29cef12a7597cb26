/**
 * The REST API and the 2PC driver through a real coordinator process, with participants
 * played by the test over the real Kafka broker.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicsFor } from '../../src/transport/kafka/topics';
import { Cluster } from '../support/cluster';
import { FakeParticipant } from '../support/fake-participant';
import { kafkaBrokers } from '../support/infra';

const cluster = new Cluster({ services: [] });
let alpha: FakeParticipant;
let beta: FakeParticipant;

const create = (body: unknown, headers: Record<string, string> = {}, query = '') => cluster.api('POST', `/v1/transactions${query}`, body, headers);
const twoParticipants = (payload: unknown = { n: 1 }) => ({ protocol: '2pc', participants: [{ name: 'alpha', payload }, { name: 'beta', payload }] });

beforeAll(async () => {
  await cluster.start();
  alpha = new FakeParticipant('alpha', cluster.prefix, { autoAck: true });
  beta = new FakeParticipant('beta', cluster.prefix, { autoAck: true });
  await Promise.all([alpha.start(), beta.start()]);
  await cluster.waitForLive('alpha');
  await cluster.waitForLive('beta');
});

afterAll(async () => {
  await Promise.all([alpha?.stop(), beta?.stop()]);
  await cluster.stop();
});

describe('bad input gets a clear 4xx', () => {
  it.each([
    ['malformed JSON', '{"protocol": "2pc", ', 400, /JSON|Unexpected|Expected/i],
    ['an unknown protocol', { protocol: 'xa', participants: [{ name: 'alpha' }] }, 400, /unknown protocol "xa"/],
    ['no participants', { protocol: '2pc', participants: [] }, 400, /non-empty array/],
    ['a duplicate participant', { protocol: '2pc', participants: [{ name: 'alpha' }, { name: 'alpha' }] }, 400, /more than once/],
    ['an unknown participant', { protocol: '2pc', participants: [{ name: 'nobody' }] }, 422, /unknown participant nobody/],
    ['an oversized payload', { protocol: '2pc', participants: [{ name: 'alpha', payload: 'x'.repeat(70_000) }] }, 413, /limit is 65536/],
    ['a bad timeout', { protocol: '2pc', participants: [{ name: 'alpha' }], timeoutMs: -5 }, 400, /timeoutMs must be/],
    ['an unknown field', { protocol: '2pc', participants: [{ name: 'alpha' }], timeout: 5 }, 400, /unknown field\(s\): timeout/],
    ['a non-object body', [1, 2], 400, /JSON object/],
  ])('rejects %s', async (_what, body, status, message) => {
    const response = await create(body);
    expect(response.status).toBe(status);
    expect(typeof response.body === 'string' ? response.body : response.body.message).toMatch(message);
  });

  it('answers 404 for an unknown transaction id, and 400 for a bad listing filter', async () => {
    expect((await cluster.api('GET', '/v1/transactions/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await cluster.api('GET', '/v1/transactions/not-a-uuid')).status).toBe(404);
    expect((await cluster.api('GET', '/v1/transactions?state=MAYBE')).status).toBe(400);
    expect((await cluster.api('GET', '/v1/transactions?limit=0')).status).toBe(400);
    expect((await cluster.api('GET', '/v1/transactions/00000000-0000-4000-8000-000000000000?waitMs=abc')).status).toBe(400);
  });

  it('serves OpenAPI at /docs and lists participants with their last-seen time', async () => {
    const spec = await cluster.api('GET', '/docs/openapi.json');
    expect(spec.status).toBe(200);
    expect(Object.keys(spec.body.paths)).toContain('/v1/transactions');
    const participants = await cluster.api('GET', '/v1/participants');
    const alphaEntry = participants.body.find((p: { name: string }) => p.name === 'alpha');
    expect(alphaEntry).toMatchObject({ live: true, topic: `${cluster.prefix}.rm.alpha` });
    expect(Date.now() - new Date(alphaEntry.lastSeenAt).getTime()).toBeLessThan(10_000);
  });
});

describe('two-phase commit with participants on the wire', () => {
  it('commits when every participant votes YES, and completes on acks', async () => {
    const { status, body } = await create(twoParticipants({ item: 'book' }));
    expect(status).toBe(201);
    const prepare = await alpha.next('PREPARE', body.id);
    expect(prepare.body).toEqual({ payload: { item: 'book' }, timeoutMs: 10_000 });
    await Promise.all([alpha.vote(body.id, 'YES'), beta.vote(body.id, 'YES')]);
    const decided = await cluster.api('GET', `/v1/transactions/${body.id}?waitMs=20000`);
    expect(decided.body).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT' });
    await beta.next('COMMIT', body.id);
    const completed = await waitForCompletion(body.id);
    expect(completed.participants.map((p: { vote: string; acked: boolean }) => [p.vote, p.acked])).toEqual([['YES', true], ['YES', true]]);
  });

  it('forces the decision to the log before any participant hears it', async () => {
    const decisionsSeenInLog: (string | null)[] = [];
    const delta = new FakeParticipant('delta', cluster.prefix, {
      autoAck: true,
      onMessage: async (e) => {
        if (e.type !== 'COMMIT' && e.type !== 'ABORT') return;
        const [row] = await cluster.query('coordinator', 'SELECT decision FROM transactions WHERE id = $1', [e.txnId]);
        decisionsSeenInLog.push(row.decision);
      },
    });
    await delta.start();
    await cluster.waitForLive('delta');
    for (const vote of ['YES', 'NO'] as const) {
      const { body } = await create({ protocol: '2pc', participants: [{ name: 'alpha' }, { name: 'delta' }] });
      await Promise.all([alpha.vote(body.id, 'YES'), delta.vote(body.id, vote)]);
      await delta.next(vote === 'YES' ? 'COMMIT' : 'ABORT', body.id);
    }
    expect(decisionsSeenInLog).toEqual(['COMMIT', 'ABORT']);
    await delta.stop();
  });

  it('aborts on a NO vote and tells every participant', async () => {
    const { body } = await create(twoParticipants());
    await alpha.next('PREPARE', body.id);
    await alpha.vote(body.id, 'NO', 'out of stock');
    const decided = await cluster.api('GET', `/v1/transactions/${body.id}?waitMs=20000`);
    expect(decided.body).toMatchObject({ state: 'ABORTED', decision: 'ABORT' });
    expect(decided.body.decisionReason).toMatch(/alpha voted no: out of stock/);
    await beta.next('ABORT', body.id);
  });

  it('aborts when a participant never answers within timeoutMs', async () => {
    const { body } = await create({ ...twoParticipants(), timeoutMs: 1500 });
    await alpha.vote(body.id, 'YES');
    const decided = await cluster.api('GET', `/v1/transactions/${body.id}?waitMs=20000`);
    expect(decided.body).toMatchObject({ state: 'ABORTED', decisionReason: 'prepare timed out' });
  });

  it('treats duplicate votes as harmless and re-sends the decision to a late voter', async () => {
    const { body } = await create(twoParticipants());
    await alpha.vote(body.id, 'YES');
    await alpha.vote(body.id, 'YES');
    await beta.vote(body.id, 'YES');
    const decided = await cluster.api('GET', `/v1/transactions/${body.id}?waitMs=20000`);
    expect(decided.body.decision).toBe('COMMIT');
    await waitForCompletion(body.id);
    const commitsBefore = beta.received.filter((e) => e.type === 'COMMIT' && e.txnId === body.id).length;
    await beta.vote(body.id, 'NO', 'too late');
    await beta.reply(body.id, 'QUERY', {});
    await waitFor(() => beta.received.filter((e) => e.type === 'COMMIT' && e.txnId === body.id).length > commitsBefore);
    const after = await cluster.api('GET', `/v1/transactions/${body.id}`);
    expect(after.body).toMatchObject({ decision: 'COMMIT', state: 'COMMITTED' });
  });

  it('answers a QUERY for a transaction it never logged with ABORT (presumed abort)', async () => {
    const ghost = '11111111-1111-4111-8111-111111111111';
    await alpha.reply(ghost, 'QUERY', {});
    await alpha.next('ABORT', ghost);
  });

  it('returns the same transaction for a retried Idempotency-Key and refuses a different body', async () => {
    const first = await create(twoParticipants(), { 'Idempotency-Key': 'order-42' });
    const retry = await create(twoParticipants(), { 'Idempotency-Key': 'order-42' });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(200);
    expect(retry.body.id).toBe(first.body.id);
    const conflicting = await create(twoParticipants({ n: 2 }), { 'Idempotency-Key': 'order-42' });
    expect(conflicting.status).toBe(422);
    await Promise.all([alpha.vote(first.body.id, 'YES'), beta.vote(first.body.id, 'YES')]);
    expect((await cluster.api('GET', `/v1/transactions/${first.body.id}?waitMs=20000`)).body.decision).toBe('COMMIT');
  });

  it('waits for the decision in the create call with ?waitMs', async () => {
    const pending = create(twoParticipants(), {}, '?waitMs=20000');
    const prepared = await alpha.next('PREPARE', (await waitForNewPrepare(alpha)).txnId);
    await Promise.all([alpha.vote(prepared.txnId, 'YES'), beta.vote(prepared.txnId, 'YES')]);
    const { status, body } = await pending;
    expect(status).toBe(201);
    expect(body).toMatchObject({ id: prepared.txnId, state: 'COMMITTED' });
  });

  it('lists transactions filtered by state and protocol', async () => {
    const aborted = await cluster.api('GET', '/v1/transactions?state=ABORTED&protocol=2pc&limit=100');
    expect(aborted.status).toBe(200);
    expect(aborted.body.length).toBeGreaterThanOrEqual(2);
    expect(aborted.body.every((t: { state: string }) => t.state === 'ABORTED')).toBe(true);
    const limited = await cluster.api('GET', '/v1/transactions?limit=1');
    expect(limited.body).toHaveLength(1);
  });

  it('aborts at once when a participant stops announcing, without waiting for the timeout', async () => {
    const gamma = new FakeParticipant('gamma', cluster.prefix);
    await gamma.start();
    await cluster.waitForLive('gamma');
    const { body } = await create({ protocol: '2pc', participants: [{ name: 'alpha' }, { name: 'gamma' }], timeoutMs: 120_000 });
    await gamma.next('PREPARE', body.id);
    gamma.stopAnnouncing();
    const decided = await cluster.api('GET', `/v1/transactions/${body.id}?waitMs=30000`);
    expect(decided.body).toMatchObject({ state: 'ABORTED' });
    expect(decided.body.decisionReason).toMatch(/gamma stopped announcing/);
    const refused = await create({ protocol: '2pc', participants: [{ name: 'gamma' }] });
    expect(refused.status).toBe(503);
    await gamma.stop();
  });

  it('sends a malformed Kafka message to the dead-letter topic with a reason', async () => {
    const topics = topicsFor(cluster.prefix);
    const kafka = new Kafka({ clientId: 'dlq-reader', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${cluster.prefix}.dlq-reader`, maxWaitTimeInMs: 20 });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.deadLetter, fromBeginning: true });
    const dead = new Promise<{ reason: string; value: string }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (message.value?.toString() === '{not json') resolve({ reason: String(message.headers?.['x-dlq-reason']), value: message.value.toString() });
        },
      });
    });
    await alpha.sendRaw(topics.coordinator, '{not json');
    const { reason } = await dead;
    expect(reason).toMatch(/not valid JSON/);
    await consumer.disconnect();
    // The coordinator kept consuming after the bad message.
    const { body } = await create(twoParticipants());
    await Promise.all([alpha.vote(body.id, 'YES'), beta.vote(body.id, 'YES')]);
    expect((await cluster.api('GET', `/v1/transactions/${body.id}?waitMs=20000`)).body.decision).toBe('COMMIT');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForCompletion(id: string): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { body } = await cluster.api('GET', `/v1/transactions/${id}`);
    if (body.completed) return body;
    if (Date.now() > deadline) throw new Error(`transaction ${id} did not complete: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForNewPrepare(participant: FakeParticipant): Promise<{ txnId: string }> {
  const seen = new Set(participant.received.filter((e) => e.type === 'PREPARE').map((e) => e.txnId));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const fresh = participant.received.find((e) => e.type === 'PREPARE' && !seen.has(e.txnId));
    if (fresh) return fresh;
    if (Date.now() > deadline) throw new Error('no new PREPARE');
    await new Promise((r) => setTimeout(r, 20));
  }
}
