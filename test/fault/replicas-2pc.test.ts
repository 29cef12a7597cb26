/**
 * Two-phase commit with three coordinator replicas: any replica accepts requests, work
 * spreads over the replicas through Kafka partitions, and when an owner is killed with
 * SIGKILL another replica takes its transactions over once the lease expires.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checkConservation } from '../../examples/common/conservation';
import { Cluster } from '../support/cluster';
import { waitUntil } from '../support/processes';

let cluster: Cluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const checkoutBody = (orderId: string, qty = 1) => ({
  protocol: '2pc',
  participants: [
    { name: 'inventory', payload: { sku: 'sku-1', qty } },
    { name: 'payments', payload: { account: 'acct-1', amount: 100 * qty } },
    { name: 'orders', payload: { orderId, sku: 'sku-1', qty, account: 'acct-1', amount: 100 * qty } },
  ],
});

async function conservation(c: Cluster) {
  return checkConservation({
    inventoryUrl: c.databases.inventory,
    paymentsUrl: c.databases.payments,
    ordersUrl: c.databases.orders,
    initialStock: { 'sku-1': 100, 'sku-2': 5 },
    initialMoney: 100_000 + 100,
  });
}

async function completedOn(c: Cluster, replica: number, txnId: string): Promise<any> {
  return waitUntil(`transaction ${txnId} to complete`, async () => {
    const { body } = await c.apiOn(replica, 'GET', `/v1/transactions/${txnId}`);
    return body.completed ? body : undefined;
  }, 60_000);
}

describe('2pc with three coordinator replicas', () => {
  it('accepts transactions on every replica and spreads ownership over them', async () => {
    cluster = new Cluster({ replicas: 3 });
    await cluster.start();
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) {
      const { status, body } = await cluster.apiOn(i % 3, 'POST', '/v1/transactions?waitMs=30000', checkoutBody(`spread-${i}`));
      expect(status).toBe(201);
      expect(body.state).toBe('COMMITTED');
      ids.push(body.id);
    }
    // Any replica answers for any transaction.
    const seen = await Promise.all(ids.map((id, i) => cluster!.apiOn((i + 1) % 3, 'GET', `/v1/transactions/${id}`)));
    expect(new Set(seen.map((r) => r.body.owner))).toEqual(new Set(['coordinator-1', 'coordinator-2', 'coordinator-3']));
    for (const id of ids) await completedOn(cluster, 0, id);
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it.each([
    ['after-decision-logged', 'COMMIT'],
    ['after-prepare-sent', 'ABORT'],
  ] as const)('owner killed %s: another replica takes over after the lease and every participant ends %s', async (failpoint, expected) => {
    cluster = new Cluster({ replicas: 3, coordinatorEnv: { FAILPOINTS: failpoint } });
    await cluster.start();
    // Replica 1 (index 0) hangs at the failpoint; the others never reach it because they only run their own transactions.
    const { body } = await cluster.apiOn(0, 'POST', '/v1/transactions', checkoutBody(`killed-${failpoint}`, 2));
    expect(body.owner).toBe('coordinator-1');
    await cluster.coordinators[0]!.waitForOutput(new RegExp(`FAILPOINT ${failpoint} ${body.id}`));
    await cluster.coordinators[0]!.kill('SIGKILL');
    const killedAt = Date.now();
    const done = await completedOn(cluster, 1, body.id);
    const inDoubtMs = Date.now() - killedAt;
    console.log(`2pc takeover (${failpoint}): participants in doubt for ${inDoubtMs} ms after the owner was killed`);
    expect(done.decision).toBe(expected);
    expect(done.owner).not.toBe('coordinator-1');
    expect(done.epoch).toBe(2);
    expect(done.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
    const result = await conservation(cluster);
    expect(result.ok, result.details.join('\n')).toBe(true);
    const [order] = await cluster.query('orders', 'SELECT state FROM orders WHERE txn_id = $1', [body.id]);
    expect(order?.state ?? 'cancelled').toBe(expected === 'COMMIT' ? 'confirmed' : 'cancelled');
  });
});
