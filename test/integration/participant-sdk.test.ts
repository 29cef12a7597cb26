/**
 * The participant SDK against real Postgres and a real Kafka broker. The test plays the
 * coordinator: it produces PREPARE / COMMIT / ABORT envelopes on the participant's topic and
 * watches `<prefix>.coordinator`, `<prefix>.participants` and `<prefix>.dlq` for what comes back.
 */
import { randomUUID } from 'node:crypto';
import { Consumer, IHeaders, Kafka, Producer, logLevel } from 'kafkajs';
import { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParticipantLogger, PrepareVerdict, TransactionContext, TransactionParticipant } from '../../src/participant-sdk';
import { Envelope, parseEnvelope } from '../../src/transport/kafka/envelope';
import { Topics, topicsFor } from '../../src/transport/kafka/topics';
import { freshDatabase, kafkaBrokers, uniqueSuffix } from '../support/infra';

interface Received {
  readonly topic: string;
  readonly key: string | null;
  readonly headers: Record<string, string>;
  readonly raw: string | null;
  readonly envelope?: Envelope;
}

/** Collects everything on the topics a coordinator listens to; waits for messages, never sleeps. */
class CoordinatorProbe {
  readonly received: Received[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly consumer: Consumer) {}

  static async start(kafka: Kafka, topics: readonly string[]): Promise<CoordinatorProbe> {
    const consumer = kafka.consumer({ groupId: `probe-${uniqueSuffix()}`, maxWaitTimeInMs: 10, sessionTimeout: 6000, heartbeatInterval: 1000 });
    const probe = new CoordinatorProbe(consumer);
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ topic, message }) => probe.record(topic, message.key, message.value, message.headers) });
    await joined;
    return probe;
  }

  async waitFor(description: string, predicate: (message: Received) => boolean, timeoutMs = 20_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  count(predicate: (message: Received) => boolean): number {
    return this.received.filter(predicate).length;
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }

  private record(topic: string, key: Buffer | null, value: Buffer | null, headers: IHeaders | undefined): void {
    const text: Record<string, string> = {};
    for (const [name, header] of Object.entries(headers ?? {})) if (header !== undefined) text[name] = header.toString();
    const parsed = parseEnvelope(value ?? null);
    this.received.push({ topic, key: key?.toString() ?? null, headers: text, raw: value?.toString() ?? null, envelope: parsed.ok ? parsed.envelope : undefined });
    for (const wake of [...this.waiters]) wake();
  }
}

/** Handlers that write to a real table through ctx.db and count their calls per transaction. */
function recordingHandlers() {
  const calls = { prepare: new Map<string, number>(), commit: new Map<string, number>(), abort: new Map<string, number>() };
  const bump = (map: Map<string, number>, txnId: string) => map.set(txnId, (map.get(txnId) ?? 0) + 1);
  type Payload = { verdict?: 'NO' | 'THROW'; item?: string; failCommit?: boolean };
  const handlers = {
    async prepare(ctx: TransactionContext<Payload>): Promise<PrepareVerdict> {
      bump(calls.prepare, ctx.txnId);
      await ctx.db.query(`INSERT INTO work (txn_id, state) VALUES ($1, 'held')`, [ctx.txnId]);
      if (ctx.payload?.verdict === 'THROW') throw new Error('warehouse is on fire');
      if (ctx.payload?.verdict === 'NO') return { vote: 'NO', reason: 'not today' };
      return { vote: 'YES' };
    },
    async commit(ctx: TransactionContext<Payload>): Promise<void> {
      bump(calls.commit, ctx.txnId);
      await ctx.db.query(`UPDATE work SET state = 'done', item = $2 WHERE txn_id = $1`, [ctx.txnId, 'half-done']);
      if (ctx.payload?.failCommit && calls.commit.get(ctx.txnId) === 1) throw new Error('ledger unavailable');
      await ctx.db.query(`UPDATE work SET state = 'done', item = $2 WHERE txn_id = $1`, [ctx.txnId, ctx.payload?.item ?? null]);
    },
    async abort(ctx: TransactionContext<Payload>): Promise<void> {
      bump(calls.abort, ctx.txnId);
      await ctx.db.query(`UPDATE work SET state = 'undone' WHERE txn_id = $1`, [ctx.txnId]);
    },
  };
  return { calls, handlers };
}

const loggedErrors: string[] = [];
const loggedWarnings: string[] = [];
const quietLogger: ParticipantLogger = { info: () => undefined, warn: (message) => loggedWarnings.push(message), error: (message) => loggedErrors.push(message) };

describe('participant SDK on real Postgres and Kafka', () => {
  const suffix = uniqueSuffix();
  const prefix = `it-sdk-${suffix}`;
  const name = 'stockroom';
  const topics: Topics = topicsFor(prefix);
  const rmTopic = topics.participant(name);
  const kafka = new Kafka({ clientId: `sdk-test-${suffix}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const recorder = recordingHandlers();
  let databaseUrl: string;
  let db: Pool;
  let producer: Producer;
  let probe: CoordinatorProbe;
  let participant: TransactionParticipant;

  const makeParticipant = () =>
    new TransactionParticipant({
      name,
      brokers: kafkaBrokers(),
      topicPrefix: prefix,
      databaseUrl,
      handlers: recorder.handlers,
      announceIntervalMs: 500,
      queryIntervalMs: 300,
      sessionTimeoutMs: 3000,
      logger: quietLogger,
    });

  async function order(type: 'PREPARE' | 'COMMIT' | 'ABORT', txnId: string, opts: { epoch?: number; payload?: unknown; traceparent?: string } = {}) {
    const body = type === 'PREPARE' ? { payload: opts.payload ?? {}, timeoutMs: 30_000 } : {};
    const envelope = { v: 1, type, txnId, protocol: '2pc', from: 'test-coordinator', epoch: opts.epoch ?? 1, sentAt: new Date().toISOString(), body };
    const headers = opts.traceparent ? { traceparent: opts.traceparent } : undefined;
    await producer.send({ topic: rmTopic, acks: -1, messages: [{ key: txnId, value: JSON.stringify(envelope), headers }] });
  }

  const reply = (type: string, txnId: string) => (m: Received) => m.topic === topics.coordinator && m.envelope?.type === type && m.envelope.txnId === txnId;
  const replyCount = (type: string, txnId: string) => probe.count(reply(type, txnId));
  const logRow = async (txnId: string) =>
    (await db.query(`SELECT state, epoch, reason FROM txn_participant_log WHERE participant = $1 AND txn_id = $2`, [name, txnId])).rows[0];
  const workRow = async (txnId: string) => (await db.query(`SELECT state, item FROM work WHERE txn_id = $1`, [txnId])).rows[0];

  beforeAll(async () => {
    databaseUrl = await freshDatabase(`sdk_it_${suffix}`);
    db = new Pool({ connectionString: databaseUrl, max: 2 });
    await db.query(`CREATE TABLE work (txn_id text PRIMARY KEY, state text NOT NULL, item text)`);
    producer = kafka.producer();
    await producer.connect();
    participant = makeParticipant();
    await participant.start();
    probe = await CoordinatorProbe.start(kafka, [topics.coordinator, topics.participants, topics.deadLetter]);
  });

  afterAll(async () => {
    await participant?.stop();
    await probe?.stop();
    await producer?.disconnect();
    await db?.end();
  });

  it('announces itself with its name, protocols and topic', async () => {
    const announce = await probe.waitFor('ANNOUNCE', (m) => m.topic === topics.participants && m.envelope?.type === 'ANNOUNCE');
    expect(announce.key).toBe(name);
    expect(announce.envelope?.body).toEqual({ name, protocols: expect.arrayContaining(['2pc', 'paxos-commit']), topic: rmTopic, instanceId: participant.instanceId });
  });

  it('votes YES only after the prepared row and the handler work are durable, echoing epoch and traceparent', async () => {
    const txnId = randomUUID();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await order('PREPARE', txnId, { epoch: 3, traceparent });
    const vote = await probe.waitFor('YES vote', reply('VOTE', txnId));
    expect(vote.envelope).toMatchObject({ v: 1, protocol: '2pc', from: name, epoch: 3, body: { vote: 'YES' } });
    expect(vote.key).toBe(txnId);
    expect(vote.headers.traceparent).toBe(traceparent);
    expect(await logRow(txnId)).toMatchObject({ state: 'prepared', epoch: 3 });
    expect(await workRow(txnId)).toMatchObject({ state: 'held' });
  });

  it('answers a duplicate PREPARE with the same vote without running the handler again', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId);
    await order('PREPARE', txnId);
    await probe.waitFor('second YES vote', (m) => reply('VOTE', txnId)(m) && replyCount('VOTE', txnId) >= 2);
    expect(probe.received.filter(reply('VOTE', txnId)).map((m) => m.envelope?.body)).toEqual([{ vote: 'YES' }, { vote: 'YES' }]);
    expect(recorder.calls.prepare.get(txnId)).toBe(1);
  });

  it('commits once and acknowledges every COMMIT, even a duplicate', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId, { payload: { item: 'sku-42' } });
    await probe.waitFor('YES vote', reply('VOTE', txnId));
    await order('COMMIT', txnId);
    await order('COMMIT', txnId);
    await probe.waitFor('two ACKs', (m) => reply('ACK', txnId)(m) && replyCount('ACK', txnId) >= 2);
    expect(probe.received.filter(reply('ACK', txnId)).map((m) => m.envelope?.body)).toEqual([{ outcome: 'COMMIT' }, { outcome: 'COMMIT' }]);
    expect(recorder.calls.commit.get(txnId)).toBe(1);
    expect(await logRow(txnId)).toMatchObject({ state: 'committed' });
    // The commit handler saw the payload that came with PREPARE.
    expect(await workRow(txnId)).toEqual({ state: 'done', item: 'sku-42' });
  });

  it('aborts prepared work once and acknowledges', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId);
    await probe.waitFor('YES vote', reply('VOTE', txnId));
    await order('ABORT', txnId);
    await order('ABORT', txnId);
    await probe.waitFor('two ACKs', (m) => reply('ACK', txnId)(m) && replyCount('ACK', txnId) >= 2);
    expect(probe.received.find(reply('ACK', txnId))?.envelope?.body).toEqual({ outcome: 'ABORT' });
    expect(recorder.calls.abort.get(txnId)).toBe(1);
    expect(await workRow(txnId)).toMatchObject({ state: 'undone' });
  });

  it('votes NO with the reason the handler gives, rolling back its work', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId, { payload: { verdict: 'NO' } });
    const vote = await probe.waitFor('NO vote', reply('VOTE', txnId));
    expect(vote.envelope?.body).toEqual({ vote: 'NO', reason: 'not today' });
    expect(await logRow(txnId)).toMatchObject({ state: 'aborted', reason: 'not today' });
    expect(await workRow(txnId)).toBeUndefined();
    // The ABORT that follows a NO is acknowledged without calling abort: there is nothing to undo.
    await order('ABORT', txnId);
    expect((await probe.waitFor('ACK', reply('ACK', txnId))).envelope?.body).toEqual({ outcome: 'ABORT' });
    expect(recorder.calls.abort.get(txnId)).toBeUndefined();
  });

  it('votes NO with the error message when the prepare handler throws', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId, { payload: { verdict: 'THROW' } });
    const vote = await probe.waitFor('NO vote', reply('VOTE', txnId));
    expect(vote.envelope?.body).toEqual({ vote: 'NO', reason: 'warehouse is on fire' });
    expect(await logRow(txnId)).toMatchObject({ state: 'aborted' });
    expect(await workRow(txnId)).toBeUndefined();
  });

  it('records an ABORT for a transaction it never saw, so a late PREPARE votes NO', async () => {
    const txnId = randomUUID();
    await order('ABORT', txnId);
    expect((await probe.waitFor('ACK', reply('ACK', txnId))).envelope?.body).toEqual({ outcome: 'ABORT' });
    await order('PREPARE', txnId);
    expect((await probe.waitFor('NO vote', reply('VOTE', txnId))).envelope?.body).toMatchObject({ vote: 'NO' });
    expect(recorder.calls.prepare.get(txnId)).toBeUndefined();
    expect(recorder.calls.abort.get(txnId)).toBeUndefined();
  });

  it('ignores a COMMIT from a lower epoch than one it has seen', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId, { epoch: 2 });
    await probe.waitFor('YES vote', reply('VOTE', txnId));
    // Same key, same partition: the stale COMMIT is handled before the ABORT, so if it had
    // been applied the ABORT would be acknowledged as COMMIT.
    await order('COMMIT', txnId, { epoch: 1 });
    await order('ABORT', txnId, { epoch: 2 });
    const ack = await probe.waitFor('ACK', reply('ACK', txnId));
    expect(ack.envelope).toMatchObject({ epoch: 2, body: { outcome: 'ABORT' } });
    expect(replyCount('ACK', txnId)).toBe(1);
    expect(recorder.calls.commit.get(txnId)).toBeUndefined();
    expect(await logRow(txnId)).toMatchObject({ state: 'aborted', epoch: 2 });
  });

  it('rolls back a commit handler that throws, does not ACK the failed attempt, and retries it by itself', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId, { payload: { item: 'retry', failCommit: true } });
    await probe.waitFor('YES vote', reply('VOTE', txnId));
    await order('COMMIT', txnId);
    // The failed attempt is rolled back and retried with backoff, without waiting to be asked again.
    expect((await probe.waitFor('ACK', reply('ACK', txnId))).envelope?.body).toEqual({ outcome: 'COMMIT' });
    expect(replyCount('ACK', txnId)).toBe(1);
    expect(loggedWarnings.some((line) => line.includes(txnId) && line.includes('commit failed (attempt 1)') && line.includes('ledger unavailable'))).toBe(true);
    expect(recorder.calls.commit.get(txnId)).toBe(2);
    expect(await logRow(txnId)).toMatchObject({ state: 'committed' });
    expect(await workRow(txnId)).toEqual({ state: 'done', item: 'retry' });
  });

  it('dead-letters a malformed message with the reason and keeps consuming', async () => {
    const key = `bad-${uniqueSuffix()}`;
    await producer.send({ topic: rmTopic, acks: -1, messages: [{ key, value: '{"v":1,"type":"PREPARE"' }] });
    await producer.send({ topic: rmTopic, acks: -1, messages: [{ key, value: JSON.stringify({ v: 1, type: 'VOTE', txnId: key, protocol: '2pc', from: 'x', epoch: 0, sentAt: '', body: { vote: 'YES' } }) }] });
    const invalid = await probe.waitFor('dead letter', (m) => m.topic === topics.deadLetter && m.key === key);
    expect(invalid.raw).toBe('{"v":1,"type":"PREPARE"');
    expect(invalid.headers['x-dlq-reason']).toBe('value is not valid JSON');
    expect(invalid.headers['x-dlq-source-topic']).toBe(rmTopic);
    await probe.waitFor('second dead letter', (m) => m.topic === topics.deadLetter && m.key === key && m.headers['x-dlq-reason']?.includes('VOTE') === true);
    const txnId = randomUUID();
    await order('PREPARE', txnId);
    await probe.waitFor('YES vote after the dead letters', reply('VOTE', txnId));
  });

  it('after a restart asks about a transaction left in doubt and applies the COMMIT it is told', async () => {
    const txnId = randomUUID();
    await order('PREPARE', txnId, { payload: { item: 'restart' } });
    await probe.waitFor('YES vote', reply('VOTE', txnId));
    await participant.stop();
    participant = makeParticipant();
    await participant.start();
    const query = await probe.waitFor('QUERY', reply('QUERY', txnId));
    expect(query.envelope).toMatchObject({ from: name, epoch: 1, body: {} });
    await order('COMMIT', txnId);
    expect((await probe.waitFor('ACK', reply('ACK', txnId))).envelope?.body).toEqual({ outcome: 'COMMIT' });
    expect(recorder.calls.commit.get(txnId)).toBe(1);
    expect(await workRow(txnId)).toEqual({ state: 'done', item: 'restart' });
  });
});
