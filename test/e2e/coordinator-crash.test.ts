/**
 * The coordinator killed with SIGKILL at two protocol steps and restarted: recovery from the
 * decision log must bring every participant to the same outcome, with stock and money intact.
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

async function crashAt(failpoint: string): Promise<{ cluster: Cluster; txnId: string }> {
  cluster = new Cluster({ inventorySeed: 'sku-1:50', paymentsSeed: 'acct-1:10000', coordinatorEnv: { FAILPOINTS: failpoint } });
  await cluster.start();
  const created = await cluster.api('POST', '/v1/transactions', {
    protocol: '2pc',
    participants: [
      { name: 'inventory', payload: { sku: 'sku-1', qty: 4 } },
      { name: 'payments', payload: { account: 'acct-1', amount: 400 } },
      { name: 'orders', payload: { orderId: 'crash-1', sku: 'sku-1', qty: 4, account: 'acct-1', amount: 400 } },
    ],
  });
  expect(created.status).toBe(201);
  const txnId: string = created.body.id;
  await cluster.coordinator!.waitForOutput(new RegExp(`FAILPOINT ${failpoint} ${txnId}`));
  await cluster.coordinator!.kill('SIGKILL');
  await cluster.startCoordinator();
  return { cluster, txnId };
}

async function finalStates(c: Cluster, txnId: string) {
  const done = await waitUntil(`transaction ${txnId} to complete after recovery`, async () => {
    const { body } = await c.api('GET', `/v1/transactions/${txnId}`);
    return body.completed ? body : undefined;
  }, 60_000);
  const [reservation] = await c.query('inventory', `SELECT state FROM reservations WHERE txn_id = $1`, [txnId]);
  const [hold] = await c.query('payments', `SELECT state FROM holds WHERE txn_id = $1`, [txnId]);
  const [order] = await c.query('orders', `SELECT state FROM orders WHERE txn_id = $1`, [txnId]);
  const conservation = await checkConservation({
    inventoryUrl: c.databases.inventory,
    paymentsUrl: c.databases.payments,
    ordersUrl: c.databases.orders,
    initialStock: { 'sku-1': 50 },
    initialMoney: 10_000,
  });
  return { done, reservation: reservation?.state, hold: hold?.state, order: order?.state, conservation };
}

describe('coordinator crash and recovery', () => {
  it('killed after sending PREPARE: recovery aborts (presumed abort) and every participant ends aborted', async () => {
    const { cluster: c, txnId } = await crashAt('after-prepare-sent');
    const { done, reservation, hold, order, conservation } = await finalStates(c, txnId);
    expect(done.decision).toBe('ABORT');
    expect(done.decisionReason).toMatch(/recovered without a decision/);
    expect(reservation ?? 'released').toBe('released');
    expect(hold ?? 'released').toBe('released');
    expect(order ?? 'cancelled').toBe('cancelled');
    expect(conservation.ok, conservation.details.join('\n')).toBe(true);
  });

  it('killed after logging COMMIT: recovery re-sends it and every participant ends committed', async () => {
    const { cluster: c, txnId } = await crashAt('after-decision-logged');
    const { done, reservation, hold, order, conservation } = await finalStates(c, txnId);
    expect(done.decision).toBe('COMMIT');
    expect([reservation, hold, order]).toEqual(['committed', 'captured', 'confirmed']);
    expect(conservation.ok, conservation.details.join('\n')).toBe(true);
  });

  it('killed after COMMIT reached only the first participant: recovery re-sends it to the others', async () => {
    const { cluster: c, txnId } = await crashAt('after-some-decisions-sent');
    const { done, reservation, hold, order, conservation } = await finalStates(c, txnId);
    expect(done.decision).toBe('COMMIT');
    expect([reservation, hold, order]).toEqual(['committed', 'captured', 'confirmed']);
    expect(conservation.ok, conservation.details.join('\n')).toBe(true);
  });
});
