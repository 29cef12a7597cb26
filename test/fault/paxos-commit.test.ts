/**
 * Paxos Commit under SIGKILL, on real processes: coordinator replicas that are the acceptors
 * and leader candidates, the three example services, real Postgres and Kafka. The leader is
 * stopped by a failpoint at a step boundary and killed there; with it goes one acceptor (its
 * own), which is F for three replicas, and with five replicas (F = 2) a second acceptor, the
 * next leader in line, is killed too. The decision must then come with no process restarted,
 * every participant must end with the same outcome, and the conservation check must hold.
 * The leader is killed after the API logged the transaction, after its PREPAREs left, after
 * one phase 2b, after it logged the decision, and after its outcome reached one participant.
 * Each run prints `FAULT paxos-commit <scenario> run=<i> decisionMs=<n> completeMs=<n>`,
 * measured from the kill.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paxosCommitTopicsFor } from '../../src/transport/kafka/paxos-commit-topics';
import { FINAL_STATES, Outcome, businessStates, checkoutBody, conservation, outcomeTimes, participantLogStates, reportFault, waitForDecision } from '../support/checkout';
import { Cluster, SERVICES } from '../support/cluster';
import { waitUntil } from '../support/processes';
import { TopicWatcher } from '../support/topic-watcher';

// Quick failure detection so that a run takes about a second after the kill.
const FAST = { PAXOS_HEARTBEAT_INTERVAL_MS: '100', PAXOS_SUSPECT_AFTER_MS: '600', PAXOS_RETRY_INTERVAL_MS: '500' };
const RUNS = Number(process.env.FAULT_PAXOS_RUNS ?? 3);
// In protocol order: the API logged it (on the leader, so that the leader is the one to die),
// PREPAREs out, one phase 2b heard, decision logged, outcome sent to the first participant only.
const STEP_BOUNDARIES = ['after-transaction-logged', 'leader-after-prepare-sent', 'leader-after-some-phase2b', 'leader-after-decision', 'after-some-decisions-sent'] as const;
const DECIDED_BEFORE_THE_KILL: readonly string[] = ['leader-after-decision', 'after-some-decisions-sent'];
let orderNo = 0;

/** The next order: one unit of sku-1 for 100. */
const order = () => checkoutBody('paxos-commit', `pf-${++orderNo}`, { qty: 1, amount: 100, timeoutMs: 20_000 });

async function leaderAgreed(c: Cluster, leader: string, replicas: readonly number[]): Promise<void> {
  await waitUntil(`replicas ${replicas.join(',')} to trust ${leader}`, async () => {
    const seen = await Promise.all(replicas.map((i) => c.apiOn(i, 'GET', '/health').then((r) => r.body.paxosCommit?.leader)));
    return seen.every((l) => l === leader);
  }, 60_000);
}

/** Starts a transaction on `via`, waits for the leader to reach `failpoint` on it, and kills the leader (and `alsoKill`). */
async function killAtFailpoint(c: Cluster, failpoint: string, via: number, alsoKill: number[] = []): Promise<{ id: string; killedAt: number }> {
  const { status, body } = await c.apiOn(via, 'POST', '/v1/transactions', order());
  expect(status).toBe(201);
  await c.coordinators[0]!.waitForOutput(new RegExp(`FAILPOINT ${failpoint} ${body.id}`), 30_000);
  await Promise.all([0, ...alsoKill].map((i) => c.coordinators[i]!.kill('SIGKILL')));
  return { id: body.id, killedAt: Date.now() };
}

/** Every participant applied the same outcome, in its business tables and in its own log. */
async function expectEveryoneAt(c: Cluster, id: string, decision: Outcome): Promise<void> {
  const final = FINAL_STATES[decision];
  // A missing row reads 'none' and fails: here every service must have heard of the transaction.
  expect(await businessStates(c, id)).toEqual(final.business);
  const logs = await participantLogStates(c, 'paxos-commit', id);
  for (const service of SERVICES) expect(logs[service], service).toBe(final.log);
  const result = await conservation(c);
  expect(result.ok, result.details.join('\n')).toBe(true);
}

describe('paxos-commit with three replicas (F = 1): the leader, and its acceptor, killed at each step boundary', () => {
  const cluster = new Cluster({ replicas: 3, paxosCommit: true, coordinatorEnv: FAST, replicaEnv: { 0: { FAILPOINTS: STEP_BOUNDARIES[0] } } });
  const accepted: string[] = [];
  let acceptorTopic: TopicWatcher;

  beforeAll(async () => {
    await cluster.start();
    acceptorTopic = new TopicWatcher(paxosCommitTopicsFor(cluster.prefix).acceptor('coordinator-2'));
    await acceptorTopic.start();
  });

  afterAll(async () => {
    await acceptorTopic?.stop();
    await cluster.stop();
  });

  /** Brings coordinator-1 back (with `failpoint`) unless it runs, and waits until everyone trusts it to lead. */
  async function withLeaderAt(failpoint: string): Promise<void> {
    if (!cluster.isRunning(0)) await cluster.startCoordinator({ ...FAST, FAILPOINTS: failpoint }, 0);
    await leaderAgreed(cluster, 'coordinator-1', [0, 1, 2]);
  }

  for (const failpoint of STEP_BOUNDARIES) {
    it(`${failpoint}: coordinator-2 takes over and every participant commits`, async () => {
      for (let run = 1; run <= RUNS; run++) {
        await withLeaderAt(failpoint);
        const { id, killedAt } = await killAtFailpoint(cluster, failpoint, failpoint === 'after-transaction-logged' ? 0 : 1);
        accepted.push(id);
        const times = await outcomeTimes(cluster, 2, id, killedAt);
        reportFault('paxos-commit', failpoint, run, times);
        // Every participant voted Prepared before the takeover, so the chosen values are all Prepared.
        expect(times.txn.decision).toBe('COMMIT');
        expect(times.txn.evidence.decidedBy).toBe(DECIDED_BEFORE_THE_KILL.includes(failpoint) ? 'coordinator-1' : 'coordinator-2');
        await expectEveryoneAt(cluster, id, 'COMMIT');
      }
    });
  }

  it('a participant killed in doubt restarts, asks the acceptors and converges', async () => {
    await withLeaderAt('leader-after-prepare-sent');
    const { status, body } = await cluster.apiOn(1, 'POST', '/v1/transactions', order());
    expect(status).toBe(201);
    accepted.push(body.id);
    await cluster.coordinators[0]!.waitForOutput(new RegExp(`FAILPOINT leader-after-prepare-sent ${body.id}`), 30_000);
    // Inventory's vote has reached the acceptors; killing it now leaves it prepared and in doubt.
    await acceptorTopic.waitForCount((e) => e.type === 'PHASE2A' && e.txnId === body.id && e.from === 'inventory', 1);
    await cluster.services.get('inventory')!.kill('SIGKILL');
    await cluster.coordinators[0]!.kill('SIGKILL');
    const killedAt = Date.now();
    await waitForDecision(cluster, body.id, { replica: 2, timeoutMs: 60_000, intervalMs: 10 });
    const decisionMs = Date.now() - killedAt;
    expect((await participantLogStates(cluster, 'paxos-commit', body.id)).inventory).toBe('prepared');
    // The dead replica cannot confirm the announcement; a live one can.
    cluster.use(2);
    await cluster.startService('inventory');
    const times = await outcomeTimes(cluster, 2, body.id, killedAt);
    reportFault('paxos-commit', 'participant-killed-in-doubt', 1, { decisionMs, completeMs: times.completeMs });
    expect(times.txn.decision).toBe('COMMIT');
    await expectEveryoneAt(cluster, body.id, 'COMMIT');
  });

  it('lost no transaction the API accepted', async () => {
    const { body } = await cluster.apiOn(2, 'GET', '/v1/transactions?protocol=paxos-commit&limit=100');
    const listed = new Map(body.map((t: { id: string; completed: boolean }) => [t.id, t.completed]));
    for (const id of accepted) expect(listed.get(id), id).toBe(true);
  });
});

describe('paxos-commit with five replicas (F = 2): the leader and the next in line killed together', () => {
  // Acceptors report to the leader only here, so the participants can learn the outcome from nobody but the new leader.
  const env = { ...FAST, PAXOS_PHASE2B_TO_RMS: 'false' };
  const cluster = new Cluster({ replicas: 5, paxosCommit: true, coordinatorEnv: env, replicaEnv: { 0: { FAILPOINTS: 'leader-after-some-phase2b' } } });

  beforeAll(async () => {
    await cluster.start();
  });

  afterAll(async () => {
    await cluster.stop();
  });

  it('coordinator-3 decides with the three acceptors left', async () => {
    for (let run = 1; run <= 2; run++) {
      for (const i of [0, 1]) if (!cluster.isRunning(i)) await cluster.startCoordinator({ ...env, ...(i === 0 ? { FAILPOINTS: 'leader-after-some-phase2b' } : {}) }, i);
      await leaderAgreed(cluster, 'coordinator-1', [0, 1, 2, 3, 4]);
      const { id, killedAt } = await killAtFailpoint(cluster, 'leader-after-some-phase2b', 2, [1]);
      const times = await outcomeTimes(cluster, 3, id, killedAt);
      reportFault('paxos-commit', 'leader-and-F-acceptors-F2', run, times);
      expect(times.txn.decision).toBe('COMMIT');
      expect(times.txn.evidence.decidedBy).toBe('coordinator-3');
      await expectEveryoneAt(cluster, id, 'COMMIT');
    }
  });
});
