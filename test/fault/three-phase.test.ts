/**
 * Three-phase commit under SIGKILL. The coordinator is killed at each step boundary and NOT
 * restarted: 3PC promises that under crash failures the participants finish by themselves
 * (timeouts, then the termination protocol among them). Every participant must end with the
 * same outcome, the one the protocol dictates for that step, and the conservation check must
 * hold. Only "after the transaction is logged" needs a coordinator back: no participant has
 * heard of the transaction yet. At the end a coordinator starts again and the log must agree
 * with the participants for every transaction the API accepted, and finish them all.
 * A participant killed in the middle of a transaction restarts and converges too.
 *
 * Each run prints `FAULT 3pc <scenario> run=<i> decisionMs=<n>`: milliseconds from the kill
 * until the last participant had durably decided.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, Outcome, businessStates, checkoutBody, conservation, killAfterYesVote, participantLogStates, reportFault, transactionView, waitForCompletion, waitForDecision } from '../support/checkout';
import { Cluster, SERVICES } from '../support/cluster';
import { waitUntil } from '../support/processes';

const RUNS = Number(process.env.FAULT_3PC_RUNS ?? 3);
const STOCK = { 'sku-1': 1000 };
const MONEY = 1_000_000;
const INITIAL = { stock: STOCK, money: MONEY };
// A short failure-detector TTL (four announcements) and short 3PC waits keep each run quick.
const TIMING = { PARTICIPANT_TTL_MS: '2000', PRECOMMIT_ACK_TIMEOUT_MS: '1000', RESEND_INTERVAL_MS: '300' };
const TXN_TIMEOUT_MS = 2000;

const SCENARIOS: readonly [failpoint: string, expected: Outcome][] = [
  ['after-transaction-logged', 'ABORT'],
  ['after-prepare-sent', 'ABORT'],
  ['after-votes', 'ABORT'],
  ['after-precommit-logged', 'ABORT'],
  ['after-some-precommits-sent', 'COMMIT'],
  ['after-decision-logged', 'COMMIT'],
  ['after-some-decisions-sent', 'COMMIT'],
];

const cluster = new Cluster({ inventorySeed: 'sku-1:1000', paymentsSeed: `acct-1:${MONEY}`, coordinatorEnv: TIMING });
/** Every transaction the API accepted, with the outcome its participants reached. */
const accepted = new Map<string, Outcome>();
let orderNo = 0;

/** The next order, one unit of sku-1 for 10; its order id also makes the Idempotency-Key. */
function nextOrder(timeoutMs: number) {
  const orderId = `f3-${++orderNo}`;
  return { orderId, request: checkoutBody('3pc', orderId, { amount: 10, timeoutMs }) };
}

/**
 * Creates a transaction as a careful client does: a coordinator that just took its
 * partitions over may answer 503 during a rebalance, and the same Idempotency-Key is retried.
 */
async function submit(timeoutMs: number): Promise<string> {
  const { orderId, request } = nextOrder(timeoutMs);
  const key = `${orderId}-${cluster.prefix}`;
  const created = await waitUntil('the API to accept the transaction', async () => {
    const response = await cluster.api('POST', '/v1/transactions', request, { 'Idempotency-Key': key });
    if (response.status === 503) return undefined;
    expect(response.status).toBe(201);
    return response.body as { id: string };
  }, 60_000, 100);
  return created.id;
}

/** Resolves once every participant has an outcome; fails if they disagree. */
async function participantsDecide(txnId: string, timeoutMs = 60_000): Promise<Outcome> {
  const states = await waitUntil(`every participant to decide ${txnId}`, async () => {
    // Each participant's durable state in its 3PC log, 'none' before it heard of the transaction.
    const now = Object.values(await participantLogStates(cluster, '3pc', txnId));
    return now.every((s) => s === 'committed' || s === 'aborted') ? now : undefined;
  }, timeoutMs, 25);
  expect(new Set(states).size, `participants disagree on ${txnId}: ${states.join(', ')}`).toBe(1);
  return states[0] === 'committed' ? 'COMMIT' : 'ABORT';
}

/** Replaces the running coordinator (stopped cleanly if alive) with one that has `failpoint` set. */
async function coordinatorWith(failpoint?: string): Promise<void> {
  await cluster.coordinator?.stop();
  await cluster.startCoordinator({ ...TIMING, ...(failpoint ? { FAILPOINTS: failpoint } : {}) });
}

async function expectOutcome(txnId: string, outcome: Outcome): Promise<void> {
  expect(await businessStates(cluster, txnId, { noRowMeansAborted: true })).toEqual(FINAL_STATES[outcome].business);
  const result = await conservation(cluster, INITIAL);
  expect(result.ok, result.details.join('\n')).toBe(true);
}

beforeAll(async () => {
  await cluster.start();
});

afterAll(async () => {
  await cluster.stop();
});

describe('3pc: coordinator killed with SIGKILL at each step boundary, participants finish without it', () => {
  it.each(SCENARIOS)('killed %s: every participant ends %s', async (failpoint, expected) => {
    for (let run = 1; run <= RUNS; run++) {
      await coordinatorWith(failpoint);
      const txnId = await submit(TXN_TIMEOUT_MS);
      await cluster.coordinator!.waitForOutput(new RegExp(`FAILPOINT ${failpoint} ${txnId}`), 60_000);
      await cluster.coordinator!.kill('SIGKILL');
      const killedAt = Date.now();
      // Nobody but the coordinator knew of the transaction: it finishes once a coordinator is back.
      if (failpoint === 'after-transaction-logged') await coordinatorWith();
      const outcome = await participantsDecide(txnId);
      reportFault('3pc', failpoint, run, { decisionMs: Date.now() - killedAt });
      accepted.set(txnId, outcome);
      expect(outcome).toBe(expected);
      await expectOutcome(txnId, outcome);
    }
  });

  it('a participant killed after voting YES restarts and converges with the others', async () => {
    await coordinatorWith();
    for (let run = 1; run <= RUNS; run++) {
      // Orders holds its vote back, so the transaction waits while inventory is killed.
      const { txnId, killedAt } = await killAfterYesVote(cluster, { holdBack: 'orders', victim: 'inventory' }, () => submit(30_000));
      // The coordinator pre-commits, finds inventory silent, and commits once its detector reports inventory gone.
      await waitForDecision(cluster, txnId);
      await cluster.startService('inventory');
      const outcome = await participantsDecide(txnId);
      reportFault('3pc', 'participant-killed', run, { decisionMs: Date.now() - killedAt });
      accepted.set(txnId, outcome);
      expect((await transactionView(cluster, txnId)).decision).toBe(outcome);
      await expectOutcome(txnId, outcome);
    }
  });

  it('with three replicas, another replica takes a killed owner over and learns what the participants decided', async () => {
    // Every replica has the failpoint, but only transactions begun by a process stop at it.
    const replicas = new Cluster({ replicas: 3, inventorySeed: 'sku-1:100', paymentsSeed: 'acct-1:1000', coordinatorEnv: { ...TIMING, FAILPOINTS: 'after-some-precommits-sent' } });
    try {
      await replicas.start();
      const { status, body } = await replicas.apiOn(0, 'POST', '/v1/transactions', nextOrder(TXN_TIMEOUT_MS).request);
      expect(status).toBe(201);
      expect(body.owner).toBe('coordinator-1');
      await replicas.coordinators[0]!.waitForOutput(new RegExp(`FAILPOINT after-some-precommits-sent ${body.id}`));
      await replicas.coordinators[0]!.kill('SIGKILL');
      const killedAt = Date.now();
      const done = await waitForCompletion(replicas, body.id, { replica: 1, timeoutMs: 60_000 });
      reportFault('3pc', 'owner-killed-replicas', 1, { decisionMs: Date.now() - killedAt });
      expect(done).toMatchObject({ decision: 'COMMIT', epoch: 2, decisionReason: expect.stringMatching(/termination protocol/) });
      expect(done.owner).not.toBe('coordinator-1');
      const logs = await participantLogStates(replicas, '3pc', body.id);
      for (const name of SERVICES) expect(logs[name]).toBe('committed');
    } finally {
      await replicas.stop();
    }
  });

  it('a coordinator started again agrees with the participants on every accepted transaction and finishes them all', async () => {
    await coordinatorWith();
    for (const [txnId, outcome] of accepted) {
      const done = await waitForCompletion(cluster, txnId, { timeoutMs: 60_000 });
      expect(done.decision, `log and participants disagree on ${txnId}`).toBe(outcome);
    }
    expect(accepted.size).toBe(SCENARIOS.length * RUNS + RUNS);
    const listed = (await cluster.api('GET', '/v1/transactions?protocol=3pc&limit=500')).body as { id: string }[];
    expect(new Set(listed.map((t) => t.id))).toEqual(new Set(accepted.keys()));
    expect((await conservation(cluster, INITIAL)).ok).toBe(true);
  });
});
