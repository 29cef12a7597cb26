/**
 * Checkout end to end: the REST API, a coordinator process and the inventory, payments and
 * orders services as separate processes, each with its own database, over real Kafka.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConservation } from '../../examples/common/conservation';
import { topicsFor } from '../../src/transport/kafka/topics';
import { Cluster } from '../support/cluster';
import { FakeParticipant } from '../support/fake-participant';
import { TopicWatcher } from '../support/topic-watcher';
import { waitUntil } from '../support/processes';

const STOCK = { 'sku-1': 100, 'sku-2': 5 };
const MONEY = { 'acct-1': 100_000, 'acct-2': 100 };
const cluster = new Cluster({ inventorySeed: 'sku-1:100,sku-2:5', paymentsSeed: 'acct-1:100000,acct-2:100' });
let coordinatorTopic: TopicWatcher;
let orderNo = 0;

function checkout(sku: string, qty: number, account: string, amount: number, extra: { name: string; payload?: unknown }[] = [], timeoutMs?: number) {
  const orderId = `o-${++orderNo}`;
  return cluster.api('POST', '/v1/transactions?waitMs=30000', {
    protocol: '2pc',
    ...(timeoutMs ? { timeoutMs } : {}),
    participants: [
      { name: 'inventory', payload: { sku, qty } },
      { name: 'payments', payload: { account, amount } },
      { name: 'orders', payload: { orderId, sku, qty, account, amount } },
      ...extra,
    ],
  });
}

async function completed(id: string): Promise<any> {
  return waitUntil(`transaction ${id} to complete`, async () => {
    const { body } = await cluster.api('GET', `/v1/transactions/${id}`);
    return body.completed ? body : undefined;
  });
}

async function conservation() {
  return checkConservation({
    inventoryUrl: cluster.databases.inventory,
    paymentsUrl: cluster.databases.payments,
    ordersUrl: cluster.databases.orders,
    initialStock: STOCK,
    initialMoney: MONEY['acct-1'] + MONEY['acct-2'],
  });
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
    await completed(body.id);
    const [stock] = await cluster.query('inventory', `SELECT available, reserved, sold FROM stock WHERE sku = 'sku-1'`);
    expect(stock).toEqual({ available: 98, reserved: 0, sold: 2 });
    const [order] = await cluster.query('orders', `SELECT state FROM orders WHERE txn_id = $1`, [body.id]);
    expect(order.state).toBe('confirmed');
    expect((await conservation()).ok).toBe(true);
  });

  it('aborts on a NO vote for stock and releases what the others held', async () => {
    const { body } = await checkout('sku-2', 10, 'acct-1', 100);
    expect(body).toMatchObject({ state: 'ABORTED' });
    expect(body.decisionReason).toMatch(/inventory voted no: .*stock/);
    await completed(body.id);
    const [hold] = await cluster.query('payments', `SELECT state FROM holds WHERE txn_id = $1`, [body.id]);
    expect(hold?.state ?? 'never held').not.toBe('held');
    const result = await conservation();
    expect(result.ok, result.details.join('\n')).toBe(true);
  });

  it('aborts on a NO vote for funds', async () => {
    const { body } = await checkout('sku-1', 1, 'acct-2', 5_000);
    expect(body).toMatchObject({ state: 'ABORTED' });
    expect(body.decisionReason).toMatch(/payments voted no: .*funds/);
    await completed(body.id);
    const [stock] = await cluster.query('inventory', `SELECT available, reserved FROM stock WHERE sku = 'sku-1'`);
    expect(stock.reserved).toBe(0);
    expect((await conservation()).ok).toBe(true);
  });

  it('aborts when a participant never answers, and that participant still ends aborted', async () => {
    const payments = cluster.services.get('payments')!;
    payments.child.kill('SIGSTOP');
    try {
      const { body } = await checkout('sku-1', 1, 'acct-1', 120, [], 1500);
      expect(body).toMatchObject({ state: 'ABORTED', decisionReason: 'prepare timed out' });
      payments.child.kill('SIGCONT');
      await completed(body.id);
      const [hold] = await cluster.query('payments', `SELECT state FROM holds WHERE txn_id = $1`, [body.id]);
      expect(hold?.state ?? 'never held').not.toBe('held');
      expect((await conservation()).ok).toBe(true);
    } finally {
      payments.child.kill('SIGCONT');
    }
  });

  it('applies a commit once although COMMIT, PREPARE and votes are delivered again', async () => {
    const { body } = await checkout('sku-1', 3, 'acct-1', 360);
    expect(body.state).toBe('COMMITTED');
    await completed(body.id);
    const before = await cluster.query('inventory', `SELECT available, sold FROM stock WHERE sku = 'sku-1'`);
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
    const after = await cluster.query('inventory', `SELECT available, sold FROM stock WHERE sku = 'sku-1'`);
    expect(after).toEqual(before);
    expect((await cluster.api('GET', `/v1/transactions/${body.id}`)).body.decision).toBe('COMMIT');
    expect((await conservation()).ok).toBe(true);
  });

  it('a participant killed after voting YES learns the outcome when it restarts', async () => {
    const gate = new FakeParticipant('gate', cluster.prefix, { autoAck: true });
    await gate.start();
    await cluster.waitForLive('gate');
    const pending = checkout('sku-1', 1, 'acct-1', 120, [{ name: 'gate' }], 60_000);
    const prepare = await waitUntil('a PREPARE for the gate', async () => gate.received.find((e) => e.type === 'PREPARE'));
    const txnId = prepare.txnId;
    await waitUntil('inventory to vote YES', async () => {
      const { body } = await cluster.api('GET', `/v1/transactions/${txnId}`);
      return body.participants.find((p: { name: string }) => p.name === 'inventory').vote === 'YES';
    });
    await cluster.services.get('inventory')!.kill('SIGKILL');
    await gate.vote(txnId, 'YES');
    expect((await pending).body).toMatchObject({ id: txnId, state: 'COMMITTED' });
    await cluster.startService('inventory');
    const done = await completed(txnId);
    expect(done.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
    const [reservation] = await cluster.query('inventory', `SELECT state FROM reservations WHERE txn_id = $1`, [txnId]);
    expect(reservation.state).toBe('committed');
    expect((await conservation()).ok).toBe(true);
    await gate.stop();
  });
});
