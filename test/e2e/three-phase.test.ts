/**
 * Checkout over three-phase commit end to end: the REST API, a coordinator process and the
 * inventory, payments and orders services as separate processes over real Kafka, each with
 * its own database. The services are the same as for 2pc; only the protocol changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicsFor } from '../../src/transport/kafka/topics';
import { businessStates, checkoutBody, conservation, participantLogStates, stockOf, transactionView, waitForCompletion, whileStopped } from '../support/checkout';
import { Cluster } from '../support/cluster';
import { FakeParticipant } from '../support/fake-participant';
import { TopicWatcher } from '../support/topic-watcher';

const cluster = new Cluster({ inventorySeed: 'sku-1:100,sku-2:5', paymentsSeed: 'acct-1:100000,acct-2:100' });
let coordinatorTopic: TopicWatcher;
let orderNo = 0;

function checkout(sku: string, qty: number, account: string, amount: number, timeoutMs?: number) {
  const body = checkoutBody('3pc', `o3-${++orderNo}`, { sku, qty, account, amount, timeoutMs });
  return cluster.api('POST', '/v1/transactions?waitMs=30000', body);
}

/** Each service's state in its 3PC log, 'none' before it heard of the transaction. */
const logStates = (txnId: string) => participantLogStates(cluster, '3pc', txnId);

beforeAll(async () => {
  await cluster.start();
  coordinatorTopic = new TopicWatcher(topicsFor(cluster.prefix).coordinator);
  await coordinatorTopic.start();
});

afterAll(async () => {
  await coordinatorTopic?.stop();
  await cluster.stop();
});

describe('checkout over three-phase commit', () => {
  it('announces 3pc support for every example service', async () => {
    const { body } = await cluster.api<{ name: string; protocols: string[] }[]>('GET', '/v1/participants');
    for (const name of ['inventory', 'payments', 'orders']) expect(body.find((p) => p.name === name)?.protocols).toContain('3pc');
  });

  it('commits through CanCommit, PreCommit and DoCommit, and GET shows every step', async () => {
    const { status, body } = await checkout('sku-1', 2, 'acct-1', 240);
    expect(status).toBe(201);
    expect(body).toMatchObject({ protocol: '3pc', state: 'COMMITTED', decision: 'COMMIT' });
    const done = await waitForCompletion(cluster, body.id);
    expect(done.precommittedAt).not.toBeNull();
    expect(Date.parse(done.precommittedAt)).toBeLessThanOrEqual(Date.parse(done.decidedAt));
    for (const p of done.participants) {
      expect(p).toMatchObject({ vote: 'YES', acked: true });
      expect(p.precommitAckedAt).not.toBeNull();
    }
    expect(await logStates(body.id)).toEqual({ inventory: 'committed', payments: 'committed', orders: 'committed' });
    expect(await stockOf(cluster, 'sku-1')).toEqual({ available: 98, reserved: 0, sold: 2 });
    expect((await businessStates(cluster, body.id)).order).toBe('confirmed');
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it('aborts on a NO vote without a PreCommit, and releases what the others held', async () => {
    const { body } = await checkout('sku-2', 10, 'acct-1', 100);
    expect(body).toMatchObject({ state: 'ABORTED', decision: 'ABORT', precommittedAt: null });
    expect(body.decisionReason).toMatch(/inventory voted no: .*stock/);
    const done = await waitForCompletion(cluster, body.id);
    expect(done.participants.find((p: { name: string }) => p.name === 'inventory')).toMatchObject({ vote: 'NO', voteReason: 'insufficient stock' });
    expect((await businessStates(cluster, body.id)).hold).not.toBe('held');
    expect(await logStates(body.id)).toEqual({ inventory: 'aborted', payments: 'aborted', orders: 'aborted' });
    const result = await conservation(cluster);
    expect(result.ok, result.details.join('\n')).toBe(true);
  });

  it('aborts when a participant never answers, and that participant still ends aborted', async () => {
    await whileStopped(cluster, 'payments', async (resume) => {
      const { body } = await checkout('sku-1', 1, 'acct-1', 120, 1500);
      expect(body).toMatchObject({ state: 'ABORTED', decisionReason: 'prepare timed out' });
      resume();
      const done = await waitForCompletion(cluster, body.id);
      expect(done.participants.find((p: { name: string }) => p.name === 'payments').vote).toBeNull();
      expect((await businessStates(cluster, body.id)).hold).not.toBe('held');
      expect(await logStates(body.id)).toMatchObject({ inventory: 'aborted', orders: 'aborted' });
      expect((await conservation(cluster)).ok).toBe(true);
    });
  });

  it('applies a commit once although PREPARE, PRECOMMIT, COMMIT, votes and acks are delivered again', async () => {
    const { body } = await checkout('sku-1', 3, 'acct-1', 360);
    expect(body.state).toBe('COMMITTED');
    await waitForCompletion(cluster, body.id);
    const before = await stockOf(cluster, 'sku-1');
    const isInventory = (type: string) => (e: { type: string; txnId: string; from: string }) => e.type === type && e.txnId === body.id && e.from === 'inventory';
    const acks = coordinatorTopic.count(isInventory('ACK'));
    const votes = coordinatorTopic.count(isInventory('VOTE'));
    const topics = topicsFor(cluster.prefix);
    const replay = new FakeParticipant('replayer3', cluster.prefix);
    await replay.start();
    const envelope = (type: string, from: string, bodyOf: object) =>
      JSON.stringify({ v: 1, type, txnId: body.id, protocol: '3pc', from, epoch: 1, sentAt: new Date().toISOString(), body: bodyOf });
    const toInventory = (type: string, bodyOf: object) => replay.sendRaw(topics.participant('inventory'), envelope(type, 'coordinator-1', bodyOf), body.id);
    await toInventory('PREPARE', { payload: { sku: 'sku-1', qty: 3 }, timeoutMs: 10_000, participants: ['inventory', 'payments', 'orders'] });
    await toInventory('PRECOMMIT', { recoveryEpoch: { round: 0, rm: '' }, role: 'coordinator', timeoutMs: 5000 });
    await toInventory('COMMIT', { role: 'coordinator' });
    await toInventory('COMMIT', { role: 'coordinator' });
    await replay.sendRaw(topics.coordinator, envelope('VOTE', 'inventory', { vote: 'YES' }), body.id);
    await replay.sendRaw(topics.coordinator, envelope('PRECOMMIT_ACK', 'inventory', { recoveryEpoch: { round: 0, rm: '' } }), body.id);
    // A committed participant repeats its vote for the PREPARE and its ack for each COMMIT, and does nothing else.
    await coordinatorTopic.waitForCount(isInventory('ACK'), acks + 2);
    await coordinatorTopic.waitForCount(isInventory('VOTE'), votes + 2);
    await replay.stop();
    expect(await stockOf(cluster, 'sku-1')).toEqual(before);
    expect(await transactionView(cluster, body.id)).toMatchObject({ decision: 'COMMIT', completed: true });
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it('lists transactions by the PRECOMMITTED state too', async () => {
    const { status, body } = await cluster.api('GET', '/v1/transactions?state=PRECOMMITTED&protocol=3pc');
    expect(status).toBe(200);
    expect(Array.isArray(body)).toBe(true);
  });
});
