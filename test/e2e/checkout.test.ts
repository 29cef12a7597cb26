/**
 * Checkout end to end: the REST API, a coordinator process and the inventory, payments and
 * orders services as separate processes, each with its own database, over real Kafka.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicsFor } from '../../src/transport/kafka/topics';
import { businessStates, checkoutBody, conservation, stockOf, transactionView, waitForCompletion, waitForYesVotes, whileStopped } from '../support/checkout';
import { Cluster } from '../support/cluster';
import { FakeParticipant } from '../support/fake-participant';
import { TopicWatcher } from '../support/topic-watcher';
import { waitUntil } from '../support/processes';

const cluster = new Cluster({ inventorySeed: 'sku-1:100,sku-2:5', paymentsSeed: 'acct-1:100000,acct-2:100' });
let coordinatorTopic: TopicWatcher;
let orderNo = 0;

function checkout(sku: string, qty: number, account: string, amount: number, extra: { name: string; payload?: unknown }[] = [], timeoutMs?: number) {
  const body = checkoutBody('2pc', `o-${++orderNo}`, { sku, qty, account, amount, extra, timeoutMs });
  return cluster.api('POST', '/v1/transactions?waitMs=30000', body);
}

beforeAll(async () => {
  await cluster.start();
  coordinatorTopic = new TopicWatcher(topicsFor(cluster.prefix).coordinator);
  await coordinatorTopic.start();
});

afterAll(async () => {
  await coordinatorTopic?.stop();
  await cluster.stop();
});

describe('checkout over two-phase commit', () => {
  it('commits an order in all three databases', async () => {
    const { status, body } = await checkout('sku-1', 2, 'acct-1', 240);
    expect(status).toBe(201);
    expect(body).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT' });
    await waitForCompletion(cluster, body.id);
    expect(await stockOf(cluster, 'sku-1')).toEqual({ available: 98, reserved: 0, sold: 2 });
    expect((await businessStates(cluster, body.id)).order).toBe('confirmed');
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it('aborts on a NO vote for stock and releases what the others held', async () => {
    const { body } = await checkout('sku-2', 10, 'acct-1', 100);
    expect(body).toMatchObject({ state: 'ABORTED' });
    expect(body.decisionReason).toMatch(/inventory voted no: .*stock/);
    await waitForCompletion(cluster, body.id);
    expect((await businessStates(cluster, body.id)).hold).not.toBe('held');
    const result = await conservation(cluster);
    expect(result.ok, result.details.join('\n')).toBe(true);
  });

  it('aborts on a NO vote for funds', async () => {
    const { body } = await checkout('sku-1', 1, 'acct-2', 5_000);
    expect(body).toMatchObject({ state: 'ABORTED' });
    expect(body.decisionReason).toMatch(/payments voted no: .*funds/);
    await waitForCompletion(cluster, body.id);
    expect((await stockOf(cluster, 'sku-1')).reserved).toBe(0);
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it('aborts when a participant never answers, and that participant still ends aborted', async () => {
    await whileStopped(cluster, 'payments', async (resume) => {
      const { body } = await checkout('sku-1', 1, 'acct-1', 120, [], 1500);
      expect(body).toMatchObject({ state: 'ABORTED', decisionReason: 'prepare timed out' });
      resume();
      await waitForCompletion(cluster, body.id);
      expect((await businessStates(cluster, body.id)).hold).not.toBe('held');
      expect((await conservation(cluster)).ok).toBe(true);
    });
  });

  it('applies a commit once although COMMIT, PREPARE and votes are delivered again', async () => {
    const { body } = await checkout('sku-1', 3, 'acct-1', 360);
    expect(body.state).toBe('COMMITTED');
    await waitForCompletion(cluster, body.id);
    const before = await stockOf(cluster, 'sku-1');
    const isInventoryAck = (e: { type: string; txnId: string; from: string }) => e.type === 'ACK' && e.txnId === body.id && e.from === 'inventory';
    const acks = coordinatorTopic.count(isInventoryAck);
    const topics = topicsFor(cluster.prefix);
    const replay = new FakeParticipant('replayer', cluster.prefix);
    await replay.start();
    const envelope = (type: string, extra: object) => JSON.stringify({ v: 1, type, txnId: body.id, protocol: '2pc', from: 'coordinator-1', epoch: 1, sentAt: new Date().toISOString(), ...extra });
    await replay.sendRaw(topics.participant('inventory'), envelope('PREPARE', { body: { payload: { sku: 'sku-1', qty: 3 }, timeoutMs: 10_000 } }), body.id);
    await replay.sendRaw(topics.participant('inventory'), envelope('COMMIT', { body: {} }), body.id);
    await replay.sendRaw(topics.participant('inventory'), envelope('COMMIT', { body: {} }), body.id);
    await replay.sendRaw(topics.coordinator, JSON.stringify({ v: 1, type: 'VOTE', txnId: body.id, protocol: '2pc', from: 'inventory', epoch: 1, sentAt: new Date().toISOString(), body: { vote: 'YES' } }), body.id);
    await coordinatorTopic.waitForCount(isInventoryAck, acks + 2);
    await replay.stop();
    expect(await stockOf(cluster, 'sku-1')).toEqual(before);
    expect((await transactionView(cluster, body.id)).decision).toBe('COMMIT');
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it('a participant killed after voting YES learns the outcome when it restarts', async () => {
    const gate = new FakeParticipant('gate', cluster.prefix, { autoAck: true });
    await gate.start();
    await cluster.waitForLive('gate');
    const pending = checkout('sku-1', 1, 'acct-1', 120, [{ name: 'gate' }], 60_000);
    const prepare = await waitUntil('a PREPARE for the gate', async () => gate.received.find((e) => e.type === 'PREPARE'));
    const txnId = prepare.txnId;
    await waitForYesVotes(cluster, txnId, ['inventory']);
    await cluster.services.get('inventory')!.kill('SIGKILL');
    await gate.vote(txnId, 'YES');
    expect((await pending).body).toMatchObject({ id: txnId, state: 'COMMITTED' });
    await cluster.startService('inventory');
    const done = await waitForCompletion(cluster, txnId);
    expect(done.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
    expect((await businessStates(cluster, txnId)).reservation).toBe('committed');
    expect((await conservation(cluster)).ok).toBe(true);
    await gate.stop();
  });
});
