/**
 * Processes survive their database going away, and ownership is checked against the log
 * rather than assumed. Three coordinator replicas and the example services run on a
 * Postgres server of this file's own (port 55442, its own data directory), so that
 * restarting it leaves the server other tests share alone.
 *
 * - Postgres restarted under load: checkouts (2pc and 3pc) flow to every replica while the
 *   server is stopped and started again with deploy/local/postgres.sh. No process exits, and
 *   every transaction the API accepted decides and completes within BOUND_MS of the server
 *   being back, with one outcome at every participant and stock and money conserved.
 * - A coordinator paused (SIGSTOP) past its lease and its Kafka session while it owns
 *   transactions in flight: the other replicas take its partitions and its transactions
 *   over; after SIGCONT it rejoins (possibly onto the same partitions) while the participants'
 *   replies are still held back, and every accepted transaction still decides and
 *   completes within BOUND_MS.
 *
 * Each run prints `FAULT <protocol> <scenario> run=<i> decisionMs=<n> completeMs=<n>`:
 * milliseconds from the fault ending (Postgres back, coordinator continued) until the last
 * accepted transaction of that protocol is decided, and until it is complete.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARTICIPANT_LOG_TABLE } from '../../src/participant-sdk/participant-log.repository';
import { THREE_PHASE_LOG_TABLE } from '../../src/participant-sdk/three-phase-log.repository';
import { FINAL_STATES, Initial, Outcome, checkoutBody, conservation, reportFault, waitForYesVotes } from '../support/checkout';
import { Cluster, SERVICES, ServiceName } from '../support/cluster';
import { PostgresServer } from '../support/postgres-server';
import { waitUntil } from '../support/processes';

const RUNS = Number(process.env.FAULT_RESILIENCE_RUNS ?? 1);
/** Once the fault ends, every accepted transaction is decided and complete within this. */
const BOUND_MS = 60_000;
const PG_PORT = Number(process.env.FAULT_PG_PORT ?? 55442);
const PROTOCOLS = ['2pc', '3pc'] as const;
type Protocol = (typeof PROTOCOLS)[number];

// Enough stock and money that checkouts commit unless a fault aborts them.
const INITIAL: Initial = { stock: { 'sku-1': 100_000, 'sku-2': 5 }, money: 100_000_000 + 100 };

const postgres = new PostgresServer(PG_PORT);
let cluster: Cluster;
let orderNo = 0;

interface Accepted {
  readonly id: string;
  readonly protocol: Protocol;
}

interface Logged {
  id: string;
  decision: Outcome | null;
  completed_at: Date | null;
  owner_id: string;
  epoch: number;
}

const order = (protocol: Protocol) => checkoutBody(protocol, `res-${++orderNo}`, { qty: 1, amount: 100, timeoutMs: 15_000 });

/** The coordinator log's rows for `ids`, read straight from its database. */
async function logged(ids: readonly string[]): Promise<Map<string, Logged>> {
  const rows = await cluster.query<Logged>('coordinator', 'SELECT id, decision, completed_at, owner_id, epoch FROM transactions WHERE id = ANY($1::uuid[])', [ids]);
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * Waits until every transaction is decided and then complete, within what is left of
 * `deadline`; returns per protocol the time from `from` until its last one got there.
 */
async function settle(txns: readonly Accepted[], from: number, deadline: number): Promise<Record<Protocol, { decisionMs: number; completeMs: number }>> {
  const times = Object.fromEntries(PROTOCOLS.map((p) => [p, { decisionMs: 0, completeMs: 0 }])) as Record<Protocol, { decisionMs: number; completeMs: number }>;
  const pending = { decided: new Set(txns.map((t) => t.id)), completed: new Set(txns.map((t) => t.id)) };
  const protocolOf = new Map(txns.map((t) => [t.id, t.protocol]));
  await waitUntil(
    `${txns.length} accepted transactions to decide and complete`,
    async () => {
      const rows = await logged([...pending.completed]);
      const now = Date.now();
      for (const id of [...pending.completed]) {
        const row = rows.get(id);
        const protocol = protocolOf.get(id)!;
        if (row?.decision && pending.decided.delete(id)) times[protocol].decisionMs = Math.max(times[protocol].decisionMs, now - from);
        if (row?.completed_at && pending.completed.delete(id)) times[protocol].completeMs = Math.max(times[protocol].completeMs, now - from);
      }
      return pending.completed.size === 0;
    },
    Math.max(1, deadline - Date.now()),
    100,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; still undecided: ${[...pending.decided].join(', ') || '-'}; still incomplete: ${[...pending.completed].join(', ')}`);
  });
  return times;
}

/** Rows of `table` in one service's database for `ids`, by transaction id. */
async function statesIn(service: ServiceName, table: string, ids: readonly string[]): Promise<Map<string, string>> {
  const rows = await cluster.query<{ txn_id: string; state: string }>(service, `SELECT txn_id, state FROM ${table} WHERE txn_id = ANY($1)`, [ids]);
  return new Map(rows.map((r) => [r.txn_id, r.state]));
}

const BUSINESS: Record<ServiceName, { table: string; field: keyof (typeof FINAL_STATES)['COMMIT']['business'] }> = {
  inventory: { table: 'reservations', field: 'reservation' },
  payments: { table: 'holds', field: 'hold' },
  orders: { table: 'orders', field: 'order' },
};

/**
 * Agreement: every participant ended each transaction where its logged decision says, in its
 * business tables and its protocol log (no row means it never heard of it: aborted). Then
 * conservation over the three databases.
 */
async function expectAgreement(txns: readonly Accepted[]): Promise<void> {
  const ids = txns.map((t) => t.id);
  const rows = await logged(ids);
  const mismatches: string[] = [];
  for (const service of SERVICES) {
    const business = await statesIn(service, BUSINESS[service].table, ids);
    const logs = { '2pc': await statesIn(service, PARTICIPANT_LOG_TABLE, ids), '3pc': await statesIn(service, THREE_PHASE_LOG_TABLE, ids) };
    for (const txn of txns) {
      const decision = rows.get(txn.id)?.decision;
      if (!decision) {
        mismatches.push(`${txn.id}: no decision logged`);
        continue;
      }
      const final = FINAL_STATES[decision];
      const inBusiness = business.get(txn.id) ?? FINAL_STATES.ABORT.business[BUSINESS[service].field];
      const inLog = logs[txn.protocol].get(txn.id) ?? FINAL_STATES.ABORT.log;
      if (inBusiness !== final.business[BUSINESS[service].field] || inLog !== final.log) {
        mismatches.push(`${txn.protocol} ${txn.id} decided ${decision}: ${service} has ${inBusiness} / log ${inLog}`);
      }
    }
  }
  expect(mismatches).toEqual([]);
  const result = await conservation(cluster, INITIAL);
  expect(result.ok, result.details.join('\n')).toBe(true);
}

function expectNoProcessExited(): void {
  for (let i = 0; i < 3; i++) expect(cluster.isRunning(i), `coordinator-${i + 1} is running`).toBe(true);
  for (const [name, service] of cluster.services) {
    expect({ name, code: service.child.exitCode, signal: service.child.signalCode }).toEqual({ name, code: null, signal: null });
  }
}

/**
 * Checkouts from `workers` loops, alternating protocols and replicas, until stopped. A
 * request the API did not accept (an error status or a refused connection) is counted, not
 * kept: only 2xx answers promise anything.
 */
function startLoad(workers: number, paceMs: number) {
  const accepted: Accepted[] = [];
  const refused: string[] = [];
  let stopping = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let n = 0; !stopping; n++) {
      const protocol = PROTOCOLS[(n + w) % PROTOCOLS.length];
      try {
        const { status, body } = await cluster.apiOn((n + w) % 3, 'POST', '/v1/transactions', order(protocol));
        if (status === 201) accepted.push({ id: body.id, protocol });
        else refused.push(`${status}`);
      } catch (error) {
        refused.push((error as Error).message);
      }
      // Pacing keeps the load steady rather than as fast as two cores allow.
      await new Promise((resolve) => setTimeout(resolve, paceMs));
    }
  });
  return {
    accepted,
    refused,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

beforeAll(async () => {
  await postgres.start();
  cluster = new Cluster({
    replicas: 3,
    databaseUrl: postgres.adminUrl,
    inventorySeed: 'sku-1:100000,sku-2:5',
    paymentsSeed: 'acct-1:100000000,acct-2:100',
  });
  await cluster.start();
});

afterAll(async () => {
  await cluster?.stop();
  await postgres.destroy();
});

describe('resilience', () => {
  it('Postgres restarted under load: no process exits, every accepted transaction decides and completes', async () => {
    const all: Accepted[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const load = startLoad(2, 100);
      try {
        await waitUntil('checkouts accepted before the restart', async () => load.accepted.length >= 10, 60_000);
        const before = load.accepted.length;
        await postgres.stopGracefully();
        await postgres.start();
        const backAt = Date.now();
        // The API accepts work again once the server is back.
        await waitUntil('checkouts accepted after the restart', async () => load.accepted.length >= before + 10, BOUND_MS);
        await load.stop();
        // Checked before waiting too, so that a service that died says so rather than a timeout.
        expectNoProcessExited();
        const times = await settle(load.accepted, backAt, backAt + BOUND_MS);
        for (const protocol of PROTOCOLS) reportFault(protocol, 'postgres-restart', run, times[protocol]);
        console.log(`postgres-restart run=${run}: ${load.accepted.length} accepted, ${load.refused.length} refused`);
        expectNoProcessExited();
        await expectAgreement(load.accepted);
        all.push(...load.accepted);
      } finally {
        await load.stop();
      }
    }
    expect(new Set(all.map((t) => t.protocol))).toEqual(new Set(PROTOCOLS));
  });

  it('a coordinator paused past its lease and continued: every accepted transaction decides and completes', async () => {
    for (let run = 1; run <= RUNS; run++) {
      await cluster.waitForPartitions();
      const partitions = new Set<number>();
      for (let i = 0; i < 3; i++) for (const p of (await cluster.apiOn(i, 'GET', '/health')).body.partitions) partitions.add(p);
      const orders = cluster.services.get('orders')!;
      const owner = cluster.coordinators[0]!;
      const txns: Accepted[] = [];
      let resumedAt = 0;
      // Orders holds its votes back, so that coordinator-1 owns transactions in flight when it stops.
      orders.child.kill('SIGSTOP');
      try {
        for (const protocol of [...PROTOCOLS, ...PROTOCOLS]) {
          const { status, body } = await cluster.apiOn(0, 'POST', '/v1/transactions', order(protocol));
          expect(status).toBe(201);
          expect(body.owner).toBe('coordinator-1');
          txns.push({ id: body.id, protocol });
        }
        for (const txn of txns) await waitForYesVotes(cluster, txn.id, ['inventory', 'payments'], 1);
        owner.child.kill('SIGSTOP');
        try {
          // Past the Kafka session: the other two replicas hold every partition between them.
          await waitUntil('replicas 2 and 3 to hold every partition', async () => {
            const held = new Set<number>();
            for (const i of [1, 2]) for (const p of (await cluster.apiOn(i, 'GET', '/health')).body.partitions) held.add(p);
            return held.size === partitions.size;
          }, 60_000, 100);
          // Past the lease: they raised the epoch of every one of coordinator-1's transactions.
          await waitUntil('the paused owner’s transactions to be taken over', async () => {
            const rows = await logged(txns.map((t) => t.id));
            return txns.every((t) => rows.get(t.id)?.owner_id !== 'coordinator-1');
          }, BOUND_MS, 100);
        } finally {
          owner.child.kill('SIGCONT');
        }
        // Orders answers only once coordinator-1 holds its share again, so that the replies
        // to the takeover's decisions reach the replica that was paused, not the ones that
        // took over: it must notice from the log that its runs were superseded.
        await cluster.waitForPartitions();
      } finally {
        orders.child.kill('SIGCONT');
        resumedAt = Date.now();
      }
      const times = await settle(txns, resumedAt, resumedAt + BOUND_MS);
      for (const protocol of PROTOCOLS) reportFault(protocol, 'coordinator-paused', run, times[protocol]);
      expectNoProcessExited();
      await expectAgreement(txns);
      // The continued replica runs new work to the end.
      await cluster.waitForLive('orders');
      const { status, body } = await cluster.apiOn(0, 'POST', '/v1/transactions?waitMs=30000', order('2pc'));
      expect(status).toBe(201);
      expect(body.state).toBe('COMMITTED');
    }
  });
});
