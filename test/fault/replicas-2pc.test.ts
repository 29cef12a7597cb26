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
import { FINAL_STATES, Outcome, businessStates, checkoutBody, conservation, killAfterYesVote, outcomeTimes, participantLogStates, reportFault, waitForDecision } from '../support/checkout';
import { Cluster, SERVICES } from '../support/cluster';

const RUNS = Number(process.env.FAULT_2PC_RUNS ?? 3);
// In protocol order, with the outcome the protocol dictates once the owner dies there.
const SCENARIOS: readonly [failpoint: string, expected: Outcome][] = [
  ['after-transaction-logged', 'ABORT'],
  ['after-prepare-sent', 'ABORT'],
  ['after-votes', 'ABORT'],
  ['after-decision-logged', 'COMMIT'],
  ['after-some-decisions-sent', 'COMMIT'],
];

const cluster = new Cluster({ replicas: 3 });
/** Every transaction the API accepted in this file. */
const accepted: string[] = [];
let orderNo = 0;

/** The next order: `qty` units of sku-1 at 100 each. */
const order = (qty = 1) => checkoutBody('2pc', `f2-${++orderNo}`, { qty, amount: 100 * qty, timeoutMs: 30_000 });

/** Every participant applied `decision`, in its business tables and in its own log, and stock and money add up. */
async function expectEveryoneAt(txnId: string, decision: Outcome): Promise<void> {
  const final = FINAL_STATES[decision];
  // A participant that never heard of the transaction (killed before PREPARE) has no rows: that is an abort.
  expect(await businessStates(cluster, txnId, { noRowMeansAborted: true })).toEqual(final.business);
  const logs = await participantLogStates(cluster, '2pc', txnId, 'aborted');
  for (const service of SERVICES) expect(logs[service], service).toBe(final.log);
  const result = await conservation(cluster);
  expect(result.ok, result.details.join('\n')).toBe(true);
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
      const { status, body } = await cluster.apiOn(i % 3, 'POST', '/v1/transactions?waitMs=30000', order());
      expect(status).toBe(201);
      expect(body.state).toBe('COMMITTED');
      ids.push(body.id);
    }
    accepted.push(...ids);
    // Any replica answers for any transaction.
    const seen = await Promise.all(ids.map((id, i) => cluster.apiOn((i + 1) % 3, 'GET', `/v1/transactions/${id}`)));
    expect(new Set(seen.map((r) => r.body.owner))).toEqual(new Set(['coordinator-1', 'coordinator-2', 'coordinator-3']));
    for (const id of ids) await outcomeTimes(cluster, 0, id, Date.now());
  });

  it.each(SCENARIOS)('owner killed %s: another replica takes over after the lease and every participant ends %s', async (failpoint, expected) => {
    for (let run = 1; run <= RUNS; run++) {
      await ownerWith(failpoint);
      const { status, body } = await cluster.apiOn(0, 'POST', '/v1/transactions', order(2));
      expect(status).toBe(201);
      expect(body.owner).toBe('coordinator-1');
      accepted.push(body.id);
      await cluster.coordinators[0]!.waitForOutput(new RegExp(`FAILPOINT ${failpoint} ${body.id}`), 30_000);
      await cluster.coordinators[0]!.kill('SIGKILL');
      const times = await outcomeTimes(cluster, 1, body.id, Date.now());
      reportFault('2pc', failpoint, run, times);
      expect(times.txn.decision).toBe(expected);
      expect(times.txn.owner).not.toBe('coordinator-1');
      expect(times.txn.epoch).toBe(2);
      expect(times.txn.participants.every((p: { acked: boolean }) => p.acked)).toBe(true);
      await expectEveryoneAt(body.id, expected);
    }
  });

  it('a participant killed after voting YES restarts, asks, and converges with the others', async () => {
    await ownerWith();
    for (let run = 1; run <= RUNS; run++) {
      // Orders holds its vote back, so the transaction waits while inventory is killed prepared.
      const { txnId, killedAt } = await killAfterYesVote(cluster, { holdBack: 'orders', victim: 'inventory', replica: 0 }, async () => {
        const { status, body } = await cluster.apiOn(0, 'POST', '/v1/transactions', order());
        expect(status, JSON.stringify(body)).toBe(201);
        accepted.push(body.id);
        return body.id;
      });
      // Every vote is YES, so the coordinator commits; inventory, prepared and dead, learns it when it is back.
      await waitForDecision(cluster, txnId, { replica: 0 });
      expect((await participantLogStates(cluster, '2pc', txnId)).inventory).toBe('prepared');
      await cluster.startService('inventory');
      const times = await outcomeTimes(cluster, 0, txnId, killedAt);
      reportFault('2pc', 'participant-killed', run, times);
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
