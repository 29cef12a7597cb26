/**
 * Checkout over Paxos Commit end to end: three coordinator replicas, each an acceptor with a
 * database of its own and a leader candidate, and the inventory, payments and orders services
 * as separate processes over real Kafka. Requests go to a replica that is not the leader, so
 * every transaction is also handed over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { businessStates, checkoutBody, conservation, stockOf, waitForCompletion, whileStopped } from '../support/checkout';
import { Cluster } from '../support/cluster';
import { freshDatabase } from '../support/infra';

const REPLICAS = ['coordinator-1', 'coordinator-2', 'coordinator-3'];
const cluster = new Cluster({
  replicas: 3,
  paxosCommit: true,
  inventorySeed: 'sku-1:100,sku-2:5',
  paymentsSeed: 'acct-1:100000,acct-2:100',
  coordinatorEnv: { PAXOS_HEARTBEAT_INTERVAL_MS: '100', PAXOS_SUSPECT_AFTER_MS: '600', PAXOS_RETRY_INTERVAL_MS: '500' },
});
let orderNo = 0;

function checkout(sku: string, qty: number, account: string, amount: number, timeoutMs?: number) {
  const body = checkoutBody('paxos-commit', `p-${++orderNo}`, { sku, qty, account, amount, timeoutMs });
  // Replica 2 is not the leader (coordinator-1 is, while it lives): it logs and hands over.
  return cluster.apiOn(1, 'POST', '/v1/transactions?waitMs=30000', body);
}

/** Reads from coordinator-3 unless told otherwise: it neither took the request nor leads. */
const completed = (id: string, replica = 2) => waitForCompletion(cluster, id, { replica });

beforeAll(async () => {
  await cluster.start();
});

afterAll(async () => {
  await cluster.stop();
});

describe('checkout over Paxos Commit with three acceptor replicas', () => {
  it('commits an order in all three databases', async () => {
    const { status, body } = await checkout('sku-1', 2, 'acct-1', 240);
    expect(status).toBe(201);
    expect(body).toMatchObject({ protocol: 'paxos-commit', state: 'COMMITTED', decision: 'COMMIT', decisionReason: 'every participant prepared' });
    const done = await completed(body.id);
    expect(done.participants.map((p: { vote: string }) => p.vote)).toEqual(['YES', 'YES', 'YES']);
    expect(await stockOf(cluster, 'sku-1')).toEqual({ available: 98, reserved: 0, sold: 2 });
    expect((await businessStates(cluster, body.id)).order).toBe('confirmed');
    expect((await conservation(cluster)).ok).toBe(true);
  });

  it('shows the decision evidence: who accepted what in which ballot, and the leader that decided', async () => {
    const { body } = await checkout('sku-1', 1, 'acct-1', 120);
    expect(body.state).toBe('COMMITTED');
    const done = await completed(body.id, 0);
    const { evidence } = done;
    expect(evidence).toMatchObject({ acceptors: REPLICAS, leader: 'coordinator-1', decidedBy: 'coordinator-1' });
    expect(evidence.instances.map((i: { participant: string }) => i.participant)).toEqual(['inventory', 'payments', 'orders']);
    for (const instance of evidence.instances) {
      // Each participant's own vote, in its ballot 0, accepted by a majority of acceptors.
      expect(instance).toMatchObject({ chosen: 'Prepared', chosenInBallot: { round: 0, replica: '' } });
      const acceptors = new Set(instance.accepted.map((a: { acceptor: string }) => a.acceptor));
      expect(acceptors.size).toBeGreaterThanOrEqual(2);
      for (const a of instance.accepted) expect(a).toMatchObject({ ballot: { round: 0, replica: '' }, value: 'Prepared', learnedBy: 'coordinator-1' });
    }
    // Any replica answers, and only paxos-commit transactions carry evidence.
    const elsewhere = await cluster.apiOn(2, 'GET', `/v1/transactions/${body.id}`);
    expect(elsewhere.body.evidence.decidedBy).toBe('coordinator-1');
    const listed = await cluster.apiOn(1, 'GET', '/v1/transactions?protocol=paxos-commit&limit=5');
    expect(listed.body.some((t: { id: string }) => t.id === body.id)).toBe(true);
  });

  it('aborts on a NO vote, which decides at once, and releases what the others held', async () => {
    const { body } = await checkout('sku-2', 10, 'acct-1', 100);
    expect(body).toMatchObject({ state: 'ABORTED', decision: 'ABORT' });
    expect(body.decisionReason).toMatch(/inventory voted no: .*stock/);
    const done = await completed(body.id);
    expect(done.participants.find((p: { name: string }) => p.name === 'inventory').vote).toBe('NO');
    expect(done.evidence.instances.find((i: { participant: string }) => i.participant === 'inventory').chosen).toBe('Aborted');
    expect((await businessStates(cluster, body.id)).hold).not.toBe('held');
    const result = await conservation(cluster);
    expect(result.ok, result.details.join('\n')).toBe(true);
  });

  it('aborts when a participant never answers: the leader gets Aborted chosen in a ballot of its own', async () => {
    await whileStopped(cluster, 'payments', async (resume) => {
      const { body } = await checkout('sku-1', 1, 'acct-1', 120, 1500);
      expect(body).toMatchObject({ state: 'ABORTED', decision: 'ABORT' });
      expect(body.decisionReason).toMatch(/payments did not vote in time/);
      resume();
      const done = await completed(body.id);
      const instance = done.evidence.instances.find((i: { participant: string }) => i.participant === 'payments');
      expect(instance).toMatchObject({ chosen: 'Aborted', chosenInBallot: { replica: 'coordinator-1' } });
      expect(instance.chosenInBallot.round).toBeGreaterThan(0);
      const states = await businessStates(cluster, body.id);
      expect(states.hold).not.toBe('held');
      expect(states.reservation).toBe('released');
      expect((await conservation(cluster)).ok).toBe(true);
    });
  });

  it('refuses to bring back an acceptor whose database was lost, since it would forget its promises', async () => {
    await cluster.coordinators[2]!.kill('SIGKILL');
    await freshDatabase(`${cluster.prefix}_acceptor_3`);
    await expect(cluster.startCoordinator(cluster.options.coordinatorEnv, 2)).rejects.toThrow(/promises are lost/);
  });
});
