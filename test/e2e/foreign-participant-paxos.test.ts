/**
 * The Python ledger of examples/python-participant, built from docs/protocol.md, in Paxos
 * Commit transactions: three coordinator replicas, each an acceptor with a database of its
 * own, and the TypeScript inventory service. The ledger proposes its vote as a ballot-0
 * PHASE2A to every acceptor, learns the outcome from the leader or from the acceptors'
 * PHASE2B, shrugs off duplicates, and after a SIGKILL while prepared asks the acceptors.
 */
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, Kafka, Producer, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope, EnvelopeOf } from '../../src/transport/kafka/envelope';
import { waitForCompletion } from '../support/checkout';
import { Cluster } from '../support/cluster';
import { LEDGER_LIMIT, LEDGER_NAME, PythonLedger } from '../support/python-ledger';
import { kafkaBrokers } from '../support/infra';
import { waitUntil } from '../support/processes';
import { TopicWatcher } from '../support/topic-watcher';

const NAME = LEDGER_NAME;
const LIMIT = LEDGER_LIMIT;
const ACCEPTORS = ['coordinator-1', 'coordinator-2', 'coordinator-3'];
const OWN_BALLOT = { round: 0, replica: '' };

const cluster = new Cluster({
  replicas: 3,
  paxosCommit: true,
  services: ['inventory'],
  inventorySeed: 'sku-1:100',
  coordinatorEnv: {
    PAXOS_HEARTBEAT_INTERVAL_MS: '100',
    PAXOS_SUSPECT_AFTER_MS: '600',
    PAXOS_RETRY_INTERVAL_MS: '500',
    // The leader re-sends an unacknowledged outcome this rarely, so that within a test a
    // participant that missed the outcome learns it only by asking (docs/protocol.md 14.6).
    RESEND_INTERVAL_MS: '120000',
  },
});
const prefix = cluster.prefix;
const ledger = new PythonLedger(cluster, 'py-paxos');
// Topic names as docs/protocol.md sections 2 and 14.1 give them.
const topics = {
  coordinator: `${prefix}.coordinator`,
  ledger: `${prefix}.rm.${NAME}`,
  dlq: `${prefix}.dlq`,
  acceptor: (id: string) => `${prefix}.acceptor.${id}`,
};

const kafka = new Kafka({ clientId: `py-paxos-${prefix}`, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
let producer: Producer;
let admin: Admin;
let coordinatorTopic: TopicWatcher;
let ledgerTopic: TopicWatcher;
const acceptorTopics = new Map<string, TopicWatcher>();
let deadLetters: DeadLetterWatcher;
/** Every transaction id the tests used: none of their messages may end up dead-lettered. */
const txnIds = new Set<string>();
let committedId = '';
let abortedId = '';

interface LedgerRecord {
  state: string;
  epoch: number;
  reason: string | null;
  protocol: string;
  membership: { rms: string[]; acceptors: string[] } | null;
  leader: string | null;
}
interface LedgerDump {
  entries: Record<string, { amount: number; state: string }>;
  log: Record<string, LedgerRecord>;
}

/** Sent to a replica that does not lead (coordinator-2), so every transaction is handed over too. */
async function transaction(amount: number, extra: { name: string; payload?: unknown }[] = [], timeoutMs?: number) {
  const response = await cluster.apiOn(1, 'POST', '/v1/transactions?waitMs=30000', {
    protocol: 'paxos-commit',
    ...(timeoutMs ? { timeoutMs } : {}),
    participants: [{ name: 'inventory', payload: { sku: 'sku-1', qty: 1 } }, { name: NAME, payload: { amount } }, ...extra],
  });
  if (typeof response.body?.id === 'string') txnIds.add(response.body.id);
  return response;
}

const completed = (id: string): Promise<any> => waitForCompletion(cluster, id, { replica: 2, timeoutMs: 60_000 });

const stock = async () => (await cluster.query('inventory', `SELECT available, reserved, sold FROM stock WHERE sku = 'sku-1'`))[0];

/** What the ledger sent one acceptor about one transaction. */
function fromLedger<T extends 'PHASE2A' | 'QUERY'>(acceptor: string, type: T, txnId: string): EnvelopeOf<T>[] {
  return acceptorTopics.get(acceptor)!.seen.filter((e) => e.type === type && e.txnId === txnId && e.from === NAME) as EnvelopeOf<T>[];
}

async function waitFromLedgerAtEveryAcceptor(type: 'PHASE2A' | 'QUERY', txnId: string, n = 1): Promise<void> {
  await Promise.all(ACCEPTORS.map((a) => acceptorTopics.get(a)!.waitForCount((e) => e.type === type && e.txnId === txnId && e.from === NAME, n)));
}

const ackFromLedger = (txnId: string, outcome?: 'COMMIT' | 'ABORT') => (e: Envelope) =>
  e.type === 'ACK' && e.txnId === txnId && e.from === NAME && (outcome === undefined || e.body.outcome === outcome);

/** Messages on the ledger's topic for one transaction, in the order the ledger reads them. */
const toLedger = (txnId: string) => ledgerTopic.seen.filter((e) => e.txnId === txnId);

function paxosEnvelope(type: string, txnId: string, from: string, body: object): string {
  return JSON.stringify({ v: 1, type, txnId, protocol: 'paxos-commit', from, epoch: 0, sentAt: new Date().toISOString(), body });
}

async function produce(topic: string, messages: { key: string; value: string }[]): Promise<void> {
  await producer.send({ topic, acks: -1, messages });
}

/** Reads the dead-letter topic raw (its values need not parse) with the reason headers. */
class DeadLetterWatcher {
  readonly seen: { key: string; value: string | null; reason: string; source: string }[] = [];
  private readonly consumer: Consumer = kafka.consumer({ groupId: `${prefix}.dlq-watch-${randomUUID()}`, maxWaitTimeInMs: 20 });

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: topics.dlq, fromBeginning: true });
    const joined = new Promise<void>((done) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => done()));
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        const header = (name: string) => message.headers?.[name]?.toString() ?? '';
        this.seen.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? null, reason: header('x-dlq-reason'), source: header('x-dlq-source-topic') });
      },
    });
    await joined;
  }

  /**
   * Resolves once everything dead-lettered before the call has been read: a marker goes to
   * every partition, and a partition is read in order.
   */
  async catchUp(): Promise<void> {
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topics.dlq] })).topics;
    const marker = `marker-${randomUUID()}`;
    await producer.send({ topic: topics.dlq, acks: -1, messages: metadata.partitions.map((p) => ({ key: marker, value: marker, partition: p.partitionId })) });
    await waitUntil('the dead-letter markers', async () => this.seen.filter((d) => d.key === marker).length === metadata.partitions.length);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/**
 * A participant played by the test over Kafka that speaks Paxos Commit: it holds its vote
 * until told, then proposes it to every acceptor, and acknowledges every outcome.
 */
class PaxosGate {
  readonly received: Envelope[] = [];
  private readonly consumer: Consumer;
  private announcer: NodeJS.Timeout | undefined;

  constructor(readonly name: string) {
    this.consumer = kafka.consumer({ groupId: `${prefix}.rm.${name}`, maxWaitTimeInMs: 20, sessionTimeout: 6000, heartbeatInterval: 1000 });
  }

  get topic(): string {
    return `${prefix}.rm.${this.name}`;
  }

  async start(): Promise<void> {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: this.topic, numPartitions: 1 }] });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    const joined = new Promise<void>((done) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => done()));
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        const envelope = JSON.parse(message.value!.toString()) as Envelope;
        this.received.push(envelope);
        if (envelope.type === 'COMMIT' || envelope.type === 'ABORT') {
          await produce(topics.coordinator, [{ key: envelope.txnId, value: paxosEnvelope('ACK', envelope.txnId, this.name, { outcome: envelope.type }) }]);
        }
      },
    });
    await joined;
    await this.announce();
    this.announcer = setInterval(() => void this.announce().catch(() => undefined), 500);
  }

  prepare(txnId?: string): Promise<EnvelopeOf<'PREPARE'>> {
    return waitUntil(`a PREPARE for ${this.name}`, async () => this.received.find((e) => e.type === 'PREPARE' && (!txnId || e.txnId === txnId)) as EnvelopeOf<'PREPARE'> | undefined);
  }

  async vote(txnId: string, value: 'Prepared' | 'Aborted'): Promise<void> {
    const { body } = await this.prepare(txnId);
    const phase2a = paxosEnvelope('PHASE2A', txnId, this.name, { membership: body.membership, ballot: OWN_BALLOT, leader: body.leader, entries: [{ rm: this.name, value }] });
    await Promise.all(body.membership!.acceptors.map((a) => produce(topics.acceptor(a), [{ key: txnId, value: phase2a }])));
  }

  async stop(): Promise<void> {
    clearInterval(this.announcer);
    await this.consumer.disconnect();
  }

  private async announce(): Promise<void> {
    const body = { name: this.name, protocols: ['paxos-commit'], topic: this.topic, instanceId: 'gate' };
    await produce(`${prefix}.participants`, [{ key: this.name, value: JSON.stringify({ v: 1, type: 'ANNOUNCE', txnId: '', protocol: '2pc', from: this.name, epoch: 0, sentAt: new Date().toISOString(), body }) }]);
  }
}

beforeAll(async () => {
  ledger.setup();
  await cluster.start();
  producer = kafka.producer();
  admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  await ledger.start();
  // Read from the beginning, so starting them after the ledger (which creates its topic) misses nothing.
  coordinatorTopic = new TopicWatcher(topics.coordinator);
  ledgerTopic = new TopicWatcher(topics.ledger);
  for (const a of ACCEPTORS) acceptorTopics.set(a, new TopicWatcher(topics.acceptor(a)));
  deadLetters = new DeadLetterWatcher();
  await Promise.all([coordinatorTopic.start(), ledgerTopic.start(), ...[...acceptorTopics.values()].map((w) => w.start()), deadLetters.start()]);
});

afterAll(async () => {
  await ledger.stop();
  await Promise.all([coordinatorTopic?.stop(), ledgerTopic?.stop(), ...[...acceptorTopics.values()].map((w) => w.stop()), deadLetters?.stop()]);
  await Promise.all([producer?.disconnect(), admin?.disconnect()]);
  await cluster.stop();
});

describe('a Python participant built from docs/protocol.md, over Paxos Commit', () => {
  it('announces paxos-commit among its protocols', async () => {
    const { body } = await cluster.api<{ name: string; live: boolean; protocols: string[] }[]>('GET', '/v1/participants');
    const entry = body.find((p) => p.name === NAME);
    expect(entry).toMatchObject({ name: NAME, live: true });
    expect(entry!.protocols).toEqual(expect.arrayContaining(['2pc', 'paxos-commit']));
  });

  it('commits with the inventory service: its vote is a ballot-0 PHASE2A to every acceptor, chosen by a majority', async () => {
    const { status, body } = await transaction(250);
    expect(status).toBe(201);
    expect(body).toMatchObject({ protocol: 'paxos-commit', state: 'COMMITTED', decision: 'COMMIT', decisionReason: 'every participant prepared' });
    committedId = body.id;
    const done = await completed(body.id);
    expect(done.participants.find((p: { name: string }) => p.name === NAME)).toMatchObject({ vote: 'YES', acked: true });
    const instance = done.evidence.instances.find((i: { participant: string }) => i.participant === NAME);
    expect(instance).toMatchObject({ chosen: 'Prepared', chosenInBallot: OWN_BALLOT });
    expect(new Set(instance.accepted.map((a: { acceptor: string }) => a.acceptor)).size).toBeGreaterThanOrEqual(2);

    // Section 14.2: the PHASE2A carries the PREPARE's membership and leader unchanged.
    const prepare = toLedger(body.id).find((e) => e.type === 'PREPARE') as EnvelopeOf<'PREPARE'>;
    expect(prepare.body.membership).toEqual({ rms: ['inventory', NAME], acceptors: ACCEPTORS });
    for (const a of ACCEPTORS) {
      const [vote] = fromLedger(a, 'PHASE2A', body.id);
      expect(vote).toMatchObject({ protocol: 'paxos-commit', epoch: 0, from: NAME });
      expect(vote.body).toEqual({ membership: prepare.body.membership, ballot: OWN_BALLOT, leader: prepare.body.leader, entries: [{ rm: NAME, value: 'Prepared' }] });
    }
    await coordinatorTopic.waitForCount(ackFromLedger(body.id, 'COMMIT'), 1);
    expect(coordinatorTopic.seen.find(ackFromLedger(body.id))).toMatchObject({ protocol: 'paxos-commit', epoch: 0 });

    const state = ledger.dump<LedgerDump>();
    expect(state.entries[body.id]).toEqual({ amount: 250, state: 'committed' });
    expect(state.log[body.id]).toMatchObject({ state: 'committed', protocol: 'paxos-commit', membership: prepare.body.membership, leader: prepare.body.leader });
    expect(await stock()).toEqual({ available: 99, reserved: 0, sold: 1 });
  });

  it('aborts both over its limit: it proposes Aborted with the reason, which decides at once', async () => {
    const { body } = await transaction(5_000);
    expect(body).toMatchObject({ state: 'ABORTED', decision: 'ABORT' });
    expect(body.decisionReason).toBe(`${NAME} voted no: amount 5000 exceeds the ledger limit of ${LIMIT}`);
    abortedId = body.id;
    const done = await completed(body.id);
    expect(done.participants.find((p: { name: string }) => p.name === NAME)).toMatchObject({ vote: 'NO', acked: true });
    expect(done.evidence.instances.find((i: { participant: string }) => i.participant === NAME).chosen).toBe('Aborted');
    for (const a of ACCEPTORS) {
      expect(fromLedger(a, 'PHASE2A', body.id).map((e) => e.body.entries)).toEqual([
        [{ rm: NAME, value: 'Aborted', reason: `amount 5000 exceeds the ledger limit of ${LIMIT}` }],
      ]);
    }
    await coordinatorTopic.waitForCount(ackFromLedger(body.id, 'ABORT'), 1);
    const state = ledger.dump<LedgerDump>();
    expect(state.entries[body.id]).toBeUndefined();
    expect(state.log[body.id]).toMatchObject({ state: 'aborted', protocol: 'paxos-commit' });
    // The inventory's reservation was released: stock as after the first transaction.
    expect(await stock()).toEqual({ available: 99, reserved: 0, sold: 1 });
  });

  it('shrugs off every order delivered again: outcomes are re-acknowledged, nothing is redone or re-voted', async () => {
    const before = { state: ledger.dump<LedgerDump>(), stock: await stock() };
    for (const [txnId, outcome] of [[committedId, 'COMMIT'], [abortedId, 'ABORT']] as const) {
      // PREPARE, the acceptors' PHASE2B, and the outcome, as the ledger read them the first time.
      const originals = await waitUntil(`the orders of ${txnId}`, async () => {
        const seen = toLedger(txnId);
        return ['PREPARE', 'PHASE2B', outcome].every((type) => seen.some((e) => e.type === type)) && seen;
      });
      const votes = ACCEPTORS.map((a) => fromLedger(a, 'PHASE2A', txnId).length);
      const acks = coordinatorTopic.count(ackFromLedger(txnId, outcome));
      // Twice over, ending with the outcome, so that its last ACK means everything before it was handled.
      const again = [...originals, ...originals.filter((e) => e.type !== outcome), originals.find((e) => e.type === outcome)!];
      await produce(topics.ledger, again.map((e) => ({ key: txnId, value: JSON.stringify(e) })));
      await coordinatorTopic.waitForCount(ackFromLedger(txnId, outcome), acks + again.filter((e) => e.type === outcome).length);
      expect(ACCEPTORS.map((a) => fromLedger(a, 'PHASE2A', txnId).length)).toEqual(votes);
    }
    expect(ledger.dump<LedgerDump>()).toEqual(before.state);
    expect(await stock()).toEqual(before.stock);
  });

  it('learns the outcome from a majority of PHASE2B alone, counting each acceptor once per ballot', async () => {
    // Acceptors played by the test, so that no leader ever sends an outcome.
    const fakes = ['fake-1', 'fake-2', 'fake-3'];
    await admin.createTopics({ waitForLeaders: true, topics: fakes.map((a) => ({ topic: topics.acceptor(a), numPartitions: 1 })) });
    const watchers = fakes.map((a) => new TopicWatcher(topics.acceptor(a)));
    await Promise.all(watchers.map((w) => w.start()));
    const membership = { rms: [NAME, 'ghost'], acceptors: fakes };
    const phase2b = (txnId: string, from: string, ballot: object, entries: object[]) => ({ key: txnId, value: paxosEnvelope('PHASE2B', txnId, from, { ballot, entries }) });
    const prepared = (rm: string) => ({ rm, value: 'Prepared' });
    const aborted = (rm: string) => ({ rm, value: 'Aborted' });
    const votesFor = (txnId: string, n: number) => Promise.all(watchers.map((w) => w.waitForCount((e) => e.type === 'PHASE2A' && e.txnId === txnId && e.from === NAME, n)));
    try {
      const commit = randomUUID();
      const abort = randomUUID();
      txnIds.add(commit).add(abort);
      const prepares = [commit, abort].map((txnId, i) => ({
        key: txnId,
        value: paxosEnvelope('PREPARE', txnId, 'fake-1', { payload: { amount: 7 + i }, timeoutMs: 60_000, membership, leader: 'fake-1' }),
      }));
      await produce(topics.ledger, prepares);
      await Promise.all([votesFor(commit, 1), votesFor(abort, 1)]);

      // Not yet a majority for the ghost: fake-1 twice and an acceptor outside the membership
      // count once; fake-2 reports only the ledger. A repeated PREPARE, answered by a repeated
      // PHASE2A, shows all of it was read.
      await produce(topics.ledger, [
        phase2b(commit, 'fake-1', OWN_BALLOT, [prepared(NAME), prepared('ghost')]),
        phase2b(commit, 'fake-1', OWN_BALLOT, [prepared(NAME), prepared('ghost')]),
        phase2b(commit, 'intruder', OWN_BALLOT, [prepared(NAME), prepared('ghost')]),
        phase2b(commit, 'fake-2', OWN_BALLOT, [prepared(NAME)]),
        prepares[0],
      ]);
      await votesFor(commit, 2);
      expect(ledger.dump<LedgerDump>().log[commit].state).toBe('prepared');
      expect(coordinatorTopic.count(ackFromLedger(commit))).toBe(0);
      await produce(topics.ledger, [phase2b(commit, 'fake-3', OWN_BALLOT, [prepared('ghost')])]);
      await coordinatorTopic.waitForCount(ackFromLedger(commit, 'COMMIT'), 1);
      expect(ledger.dump<LedgerDump>().entries[commit]).toEqual({ amount: 7, state: 'committed' });

      // Aborted for the ghost in two different leader ballots is no majority in either.
      await produce(topics.ledger, [
        phase2b(abort, 'fake-1', { round: 1, replica: 'fake-1' }, [aborted('ghost')]),
        phase2b(abort, 'fake-2', { round: 2, replica: 'fake-2' }, [aborted('ghost')]),
        prepares[1],
      ]);
      await votesFor(abort, 2);
      expect(ledger.dump<LedgerDump>().log[abort].state).toBe('prepared');
      await produce(topics.ledger, [phase2b(abort, 'fake-3', { round: 2, replica: 'fake-2' }, [aborted('ghost')])]);
      await coordinatorTopic.waitForCount(ackFromLedger(abort, 'ABORT'), 1);
      const state = ledger.dump<LedgerDump>();
      expect(state.entries[abort]).toEqual({ amount: 8, state: 'aborted' });
      expect(state.log[abort].state).toBe('aborted');
      expect(toLedger(commit).some((e) => e.type === 'COMMIT') || toLedger(abort).some((e) => e.type === 'ABORT')).toBe(false);
    } finally {
      await Promise.all(watchers.map((w) => w.stop()));
    }
  });

  it('after a SIGKILL while prepared, asks every acceptor when it restarts and learns the outcome from the leader', async () => {
    const gate = new PaxosGate('gate');
    await gate.start();
    try {
      await cluster.waitForLive('gate');
      const pending = transaction(100, [{ name: 'gate' }], 60_000);
      const { txnId, body: order } = await gate.prepare();
      txnIds.add(txnId);
      await waitFromLedgerAtEveryAcceptor('PHASE2A', txnId);

      // A PREPARE again, as from another leader: the vote is repeated with the stored membership and leader.
      const first = toLedger(txnId).find((e) => e.type === 'PREPARE') as EnvelopeOf<'PREPARE'>;
      await produce(topics.ledger, [{ key: txnId, value: JSON.stringify({ ...first, from: 'coordinator-2', body: { ...first.body, leader: 'coordinator-2' } }) }]);
      await waitFromLedgerAtEveryAcceptor('PHASE2A', txnId, 2);
      for (const a of ACCEPTORS) {
        for (const vote of fromLedger(a, 'PHASE2A', txnId)) expect(vote.body).toMatchObject({ leader: order.leader, membership: order.membership, entries: [{ rm: NAME, value: 'Prepared' }] });
      }

      await ledger.process!.kill('SIGKILL');
      // Its vote was durable before it left: the pending entry and the membership are on disk.
      const killed = ledger.dump<LedgerDump>();
      expect(killed.entries[txnId]).toEqual({ amount: 100, state: 'pending' });
      expect(killed.log[txnId]).toMatchObject({ state: 'prepared', protocol: 'paxos-commit', membership: order.membership, leader: order.leader });

      await gate.vote(txnId, 'Prepared');
      expect((await pending).body).toMatchObject({ id: txnId, state: 'COMMITTED' });
      // Everything addressed to the ledger while it was down: the outcome and every acceptor's PHASE2B.
      await ledgerTopic.waitForCount((e) => e.txnId === txnId && e.type === 'COMMIT', 1);
      await waitUntil('a PHASE2B from every acceptor', async () =>
        ACCEPTORS.every((a) => toLedger(txnId).some((e) => e.type === 'PHASE2B' && e.from === a && e.body.entries.some((x) => x.rm === 'gate'))));
      expect(ledger.dump<LedgerDump>().entries[txnId].state).toBe('pending');

      // Skip those, as if they were lost: only its QUERY (14.6) can now tell the ledger.
      const group = `${prefix}.rm.${NAME}`;
      await waitUntil('the killed ledger to leave its group', async () => (await admin.describeGroups([group])).groups[0].state === 'Empty', 30_000, 200);
      const ends = await admin.fetchTopicOffsets(topics.ledger);
      await admin.setOffsets({ groupId: group, topic: topics.ledger, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
      const outcomesBefore = toLedger(txnId).filter((e) => e.type === 'COMMIT').length;
      const votesBefore = ACCEPTORS.map((a) => fromLedger(a, 'PHASE2A', txnId).length);

      await ledger.start();
      await waitFromLedgerAtEveryAcceptor('QUERY', txnId);
      const query = fromLedger(ACCEPTORS[0], 'QUERY', txnId)[0];
      expect(query).toMatchObject({ protocol: 'paxos-commit', epoch: 0, body: {} });
      await ledgerTopic.waitForCount((e) => e.txnId === txnId && e.type === 'COMMIT', outcomesBefore + 1);
      const answer = toLedger(txnId).filter((e) => e.type === 'COMMIT')[outcomesBefore];
      expect(answer.from).toBe(order.leader);
      expect(Date.parse(answer.sentAt)).toBeGreaterThanOrEqual(Date.parse(query.sentAt));

      const done = await completed(txnId);
      expect(done.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
      // It read none of the skipped orders: a PREPARE read again would have repeated its vote.
      expect(ACCEPTORS.map((a) => fromLedger(a, 'PHASE2A', txnId).length)).toEqual(votesBefore);
      const state = ledger.dump<LedgerDump>();
      expect(state.entries[txnId]).toEqual({ amount: 100, state: 'committed' });
      expect(state.log[txnId].state).toBe('committed');
      expect(await stock()).toEqual({ available: 98, reserved: 0, sold: 2 });
    } finally {
      await gate.stop();
    }
  });

  it('dead-letters none of it: every message both sides sent parsed', async () => {
    await deadLetters.catchUp();
    expect(deadLetters.seen.filter((d) => txnIds.has(d.key))).toEqual([]);
  });

  it('stops cleanly on SIGTERM', async () => {
    const running = ledger.process!;
    running.child.kill('SIGTERM');
    expect(await running.exited).toEqual({ code: 0, signal: null });
  });
});
