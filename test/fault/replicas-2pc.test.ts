/**
 * Two-phase commit with three coordinator replicas, under SIGKILL. Any replica accepts
 * requests and work spreads over the replicas through Kafka partitions. The owner of a
 * transaction (coordinator-1) is stopped by a failpoint at each step boundary and killed
 * there; another replica takes its partition over, waits out the lease, raises the epoch and
 * finishes the transaction from the log: presumed abort while no decision is logged, the
 * logged decision otherwise. 2PC blocks meanwhile, so each run measures how long the
 * participants stay in doubt. A participant killed after voting YES restarts and converges.
 *
 * Each run prints `FAULT 2pc <scenario> run=<i> decisionMs=<n> completeMs=<n>`: milliseconds
 * from the kill until a replica shows the decision, and until every participant applied it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConservation } from '../../examples/common/conservation';
import { Cluster, SERVICES, ServiceName } from '../support/cluster';
import { waitUntil } from '../support/processes';

const RUNS = Number(process.env.FAULT_2PC_RUNS ?? 3);
type Outcome = 'COMMIT' | 'ABORT';
// In protocol order, with the outcome the protocol dictates once the owner dies there.
const SCENARIOS: readonly [failpoint: string, expected: Outcome][] = [
  ['after-transaction-logged', 'ABORT'],
  ['after-prepare-sent', 'ABORT'],
  ['after-votes', 'ABORT'],
  ['after-decision-logged', 'COMMIT'],
  ['after-some-decisions-sent', 'COMMIT'],
];
const FINAL: Record<Outcome, { reservation: string; hold: string; order: string; log: string }> = {
  COMMIT: { reservation: 'committed', hold: 'captured', order: 'confirmed', log: 'committed' },
  ABORT: { reservation: 'released', hold: 'released', order: 'cancelled', log: 'aborted' },
};

const cluster = new Cluster({ replicas: 3 });
/** Every transaction the API accepted in this file. */
const accepted: string[] = [];
let orderNo = 0;

const checkoutBody = (qty = 1) => {
  const orderId = `f2-${++orderNo}`;
  return {
    protocol: '2pc',
    timeoutMs: 30_000,
    participants: [
      { name: 'inventory', payload: { sku: 'sku-1', qty } },
      { name: 'payments', payload: { account: 'acct-1', amount: 100 * qty } },
      { name: 'orders', payload: { orderId, sku: 'sku-1', qty, account: 'acct-1', amount: 100 * qty } },
    ],
  };
};

async function viewOn(replica: number, txnId: string): Promise<any> {
  return (await cluster.apiOn(replica, 'GET', `/v1/transactions/${txnId}`)).body;
}

/** Waits on replica `via` for a decision and then for every acknowledgement, timed from `killedAt`. */
async function outcomeTimes(via: number, txnId: string, killedAt: number): Promise<{ txn: any; decisionMs: number; completeMs: number }> {
  await waitUntil(`a decision for ${txnId}`, async () => (await viewOn(via, txnId)).decision, 60_000, 10);
  const decisionMs = Date.now() - killedAt;
  const txn = await waitUntil(`${txnId} to complete`, async () => {
    const view = await viewOn(via, txnId);
    return view.completed ? view : undefined;
  }, 60_000, 20);
  return { txn, decisionMs, completeMs: Date.now() - killedAt };
}

/** Every participant applied `decision`, in its business tables and in its own log, and stock and money add up. */
async function expectEveryoneAt(txnId: string, decision: Outcome): Promise<void> {
  const final = FINAL[decision];
  // A participant that never heard of the transaction (killed before PREPARE) has no rows: that is an abort.
  const one = async (service: ServiceName, sql: string, none: string) => (await cluster.query(service, sql, [txnId]))[0]?.state ?? none;
  expect(await one('inventory', 'SELECT state FROM reservations WHERE txn_id = $1', 'released')).toBe(final.reservation);
  expect(await one('payments', 'SELECT state FROM holds WHERE txn_id = $1', 'released')).toBe(final.hold);
  expect(await one('orders', 'SELECT state FROM orders WHERE txn_id = $1', 'cancelled')).toBe(final.order);
  for (const service of SERVICES) {
    expect(await one(service, 'SELECT state FROM txn_participant_log WHERE txn_id = $1', 'aborted'), service).toBe(final.log);
  }
  const result = await checkConservation({
    inventoryUrl: cluster.databases.inventory,
    paymentsUrl: cluster.databases.payments,
    ordersUrl: cluster.databases.orders,
    initialStock: { 'sku-1': 100, 'sku-2': 5 },
    initialMoney: 100_000 + 100,
  });
  expect(result.ok, result.details.join('\n')).toBe(true);
}

function report(scenario: string, run: number, times: { decisionMs: number; completeMs: number }): void {
  console.log(`FAULT 2pc ${scenario} run=${run} decisionMs=${times.decisionMs} completeMs=${times.completeMs}`);
}

/** Brings coordinator-1 back with `failpoints` (replacing a running one) and waits until it holds partitions again. */
async function ownerWith(failpoints?: string): Promise<void> {
  await cluster.coordinators[0]?.stop();
  await cluster.startCoordinator(failpoints ? { FAILPOINTS: failpoints } : {}, 0);
  await cluster.waitForPartitions();
}

beforeAll(async () => {
  await cluster.start();
});

afterAll(async () => {
  await cluster.stop();
});

describe('2pc with three coordinator replicas', () => {
  it('accepts transactions on every replica and spreads ownership over them', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) {
      const { status, body } = await cluster.apiOn(i % 3, 'POST', '/v1/transactions?waitMs=30000', checkoutBody());
      expect(status).toBe(201);
      expect(body.state).toBe('COMMITTED');
      ids.push(body.id);
    }
    accepted.push(...ids);
    // Any replica answers for any transaction.
    const seen = await Promise.all(ids.map((id, i) => cluster.apiOn((i + 1) % 3, 'GET', `/v1/transactions/${id}`)));
    expect(new Set(seen.map((r) => r.body.owner))).toEqual(new Set(['coordinator-1', 'coordinator-2', 'coordinator-3']));
    for (const id of ids) await outcomeTimes(0, id, Date.now());
  });

  it.each(SCENARIOS)('owner killed %s: another replica takes over after the lease and every participant ends %s', async (failpoint, expected) => {
    for (let run = 1; run <= RUNS; run++) {
      await ownerWith(failpoint);
      const { status, body } = await cluster.apiOn(0, 'POST', '/v1/transactions', checkoutBody(2));
      expect(status).toBe(201);
      expect(body.owner).toBe('coordinator-1');
      accepted.push(body.id);
      await cluster.coordinators[0]!.waitForOutput(new RegExp(`FAILPOINT ${failpoint} ${body.id}`), 30_000);
      await cluster.coordinators[0]!.kill('SIGKILL');
      const times = await outcomeTimes(1, body.id, Date.now());
      report(failpoint, run, times);
      expect(times.txn.decision).toBe(expected);
      expect(times.txn.owner).not.toBe('coordinator-1');
      expect(times.txn.epoch).toBe(2);
      expect(times.txn.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
      await expectEveryoneAt(body.id, expected);
    }
  });

  it('a participant killed after voting YES restarts, asks, and converges with the others', async () => {
    await ownerWith();
    const orders = cluster.services.get('orders')!;
    for (let run = 1; run <= RUNS; run++) {
      // Orders holds its vote back, so the transaction waits while inventory is killed prepared.
      orders.child.kill('SIGSTOP');
      let txnId: string;
      let killedAt: number;
      try {
        const { status, body } = await cluster.apiOn(0, 'POST', '/v1/transactions', checkoutBody());
        expect(status).toBe(201);
        txnId = body.id;
        accepted.push(txnId);
        await waitUntil('inventory and payments to vote YES', async () => {
          const view = await viewOn(0, txnId);
          return view.participants.filter((p: { vote: string | null }) => p.vote === 'YES').length === 2;
        });
        await cluster.services.get('inventory')!.kill('SIGKILL');
        killedAt = Date.now();
      } finally {
        orders.child.kill('SIGCONT');
      }
      // Every vote is YES, so the coordinator commits; inventory, prepared and dead, learns it when it is back.
      await waitUntil('the coordinator to decide', async () => (await viewOn(0, txnId)).decision);
      const [row] = await cluster.query('inventory', 'SELECT state FROM txn_participant_log WHERE txn_id = $1', [txnId]);
      expect(row.state).toBe('prepared');
      await cluster.startService('inventory');
      const times = await outcomeTimes(0, txnId, killedAt);
      report('participant-killed', run, times);
      expect(times.txn.decision).toBe('COMMIT');
      await expectEveryoneAt(txnId, 'COMMIT');
    }
  });

  it('lost no transaction the API accepted: every one is listed, decided and complete', async () => {
    const { body } = await cluster.apiOn(2, 'GET', '/v1/transactions?protocol=2pc&limit=100');
    const listed = new Map(body.map((t: { id: string; completed: boolean }) => [t.id, t.completed]));
    expect(accepted.length).toBeGreaterThan(SCENARIOS.length * RUNS);
    for (const id of accepted) expect(listed.get(id), id).toBe(true);
  });
});
