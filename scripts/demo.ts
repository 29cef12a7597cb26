/**
 * The checkout demo: three coordinator replicas and the inventory, payments and orders
 * services as separate processes on real Postgres and Kafka, driven by a workload in which
 * some orders succeed and some fail on stock or funds, once per protocol. During the
 * paxos-commit run the current leader is killed with SIGKILL and transactions keep deciding.
 * The summary has one row per protocol and a conservation check over every service's database.
 */
import { checkConservation } from '../examples/common/conservation';
import { Cluster } from '../test/support/cluster';

const SKUS = { 'sku-1': 900, 'sku-2': 300, 'sku-3': 40 } as const;
const ACCOUNTS = { 'acct-1': 400_000, 'acct-2': 120_000, 'acct-3': 6_000, 'acct-4': 800 } as const;
const PRICES = { 'sku-1': 120, 'sku-2': 900, 'sku-3': 2500 } as const;
const ALL_PROTOCOLS = ['2pc', '3pc', 'paxos-commit'] as const;

interface Options {
  readonly once: boolean;
  readonly orders: number;
  readonly concurrency: number;
  readonly port: number;
  readonly replicas: number;
  readonly protocols: readonly string[];
  readonly killLeader: boolean;
}

interface Row {
  readonly protocol: string;
  readonly latencies: number[];
  readonly outcomes: Map<string, number>;
  readonly ids: string[];
  readonly seconds: number;
  readonly notes: string[];
}

function parseArgs(argv: readonly string[]): Options {
  const value = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
  const i = argv.indexOf('--protocols');
  const protocols = i < 0 ? [...ALL_PROTOCOLS] : String(argv[i + 1]).split(',');
  for (const p of protocols) if (!(ALL_PROTOCOLS as readonly string[]).includes(p)) throw new Error(`unknown protocol ${p}; use ${ALL_PROTOCOLS.join(',')}`);
  return {
    once: argv.includes('--once'),
    orders: value('--orders', 150),
    concurrency: value('--concurrency', 8),
    port: value('--port', 3000),
    replicas: value('--replicas', 3),
    protocols,
    killLeader: !argv.includes('--no-kill'),
  };
}

/** A small deterministic generator so that two demo runs drive the same workload. */
function* orders(count: number, prefix: string): Generator<{ orderId: string; sku: keyof typeof SKUS; qty: number; account: keyof typeof ACCOUNTS }> {
  let seed = 42;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const skus = Object.keys(SKUS) as (keyof typeof SKUS)[];
  const accounts = Object.keys(ACCOUNTS) as (keyof typeof ACCOUNTS)[];
  for (let i = 0; i < count; i++) {
    yield { orderId: `${prefix}-order-${i + 1}`, sku: skus[Math.floor(next() * skus.length)], qty: 1 + Math.floor(next() * 3), account: accounts[Math.floor(next() * accounts.length)] };
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function shortReason(reason: string | null): string {
  if (!reason) return 'no reason';
  if (/stock/.test(reason)) return 'out of stock';
  if (/funds/.test(reason)) return 'insufficient funds';
  return reason.slice(0, 40);
}

/** Runs one protocol's share of the workload, spreading requests over the live replicas. */
async function runWorkload(cluster: Cluster, protocol: string, options: Options, midway?: () => Promise<string | undefined>): Promise<Row> {
  const latencies: number[] = [];
  const outcomes = new Map<string, number>();
  const ids: string[] = [];
  const notes: string[] = [];
  const queue = [...orders(options.orders, protocol)];
  let done = 0;
  let sent = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let order = queue.shift(); order; order = queue.shift()) {
      if (midway && ++sent === Math.floor(options.orders / 2)) {
        const note = await midway();
        if (note) notes.push(note);
      }
      const amount = PRICES[order.sku] * order.qty;
      const t0 = performance.now();
      const body = {
        protocol,
        participants: [
          { name: 'inventory', payload: { sku: order.sku, qty: order.qty } },
          { name: 'payments', payload: { account: order.account, amount } },
          { name: 'orders', payload: { orderId: order.orderId, sku: order.sku, qty: order.qty, account: order.account, amount } },
        ],
      };
      const response = await postToAnyReplica(cluster, body, order.orderId);
      latencies.push(performance.now() - t0);
      const key = response.status >= 400 ? `HTTP ${response.status}` : response.body.state === 'ABORTED' ? `ABORTED (${shortReason(response.body.decisionReason)})` : response.body.state;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (response.body?.id) ids.push(response.body.id);
      done += 1;
      if (done % Math.max(1, Math.floor(options.orders / 5)) === 0 || done === options.orders) {
        process.stdout.write(`  ${protocol} ${done}/${options.orders}  ${[...outcomes].map(([k, v]) => `${k}: ${v}`).join('  ')}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { protocol, latencies: latencies.sort((a, b) => a - b), outcomes, ids, seconds: (performance.now() - started) / 1000, notes };
}

let nextReplica = 0;

/** Round robin over the replicas that are up; a replica that was just killed is skipped, and a retry keeps the key. */
async function postToAnyReplica(cluster: Cluster, body: unknown, key: string) {
  for (let attempt = 0; ; attempt++) {
    const live = cluster.coordinators.map((_, i) => i).filter((i) => cluster.isRunning(i));
    const replica = live[nextReplica++ % live.length];
    try {
      const response = await cluster.apiOn(replica, 'POST', '/v1/transactions?waitMs=30000', body, { 'Idempotency-Key': key });
      if (response.status !== 503 || attempt >= 20) return response;
    } catch (error) {
      if (attempt >= 20) throw error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitForAllCompleted(cluster: Cluster, ids: readonly string[]): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (const id of ids) {
    for (;;) {
      const live = cluster.coordinators.findIndex((_, i) => cluster.isRunning(i));
      const { body } = await cluster.apiOn(live, 'GET', `/v1/transactions/${id}`);
      if (body.completed) break;
      if (Date.now() > deadline) throw new Error(`transaction ${id} did not complete`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Kills the replica that currently leads Paxos Commit, as the health endpoint reports it. */
async function killPaxosLeader(cluster: Cluster): Promise<string | undefined> {
  for (let i = 0; i < cluster.coordinators.length; i++) {
    if (!cluster.isRunning(i)) continue;
    const { body } = await cluster.apiOn(i, 'GET', '/health');
    const leader: string | undefined = body?.paxosCommit?.leader;
    if (!leader) continue;
    const index = Number(leader.split('-').pop()) - 1;
    if (!cluster.isRunning(index)) return undefined;
    await cluster.coordinators[index]!.kill('SIGKILL');
    const note = `killed the paxos-commit leader ${leader} with SIGKILL halfway through; the others went on deciding`;
    console.log(`  ${note}`);
    return note;
  }
  return undefined;
}

function printSummary(rows: readonly Row[]): void {
  console.log('\nsummary');
  console.log('  protocol       committed  aborted  other   p50 ms   p99 ms   tx/s');
  for (const row of rows) {
    const committed = row.outcomes.get('COMMITTED') ?? 0;
    const aborted = [...row.outcomes].filter(([k]) => k.startsWith('ABORTED')).reduce((a, [, v]) => a + v, 0);
    const other = row.latencies.length - committed - aborted;
    console.log(
      `  ${row.protocol.padEnd(14)} ${String(committed).padStart(9)}  ${String(aborted).padStart(7)}  ${String(other).padStart(5)}  ${percentile(row.latencies, 50).toFixed(1).padStart(7)}  ${percentile(row.latencies, 99).toFixed(1).padStart(7)}  ${(row.latencies.length / row.seconds).toFixed(1).padStart(5)}`,
    );
    for (const note of row.notes) console.log(`    ${note}`);
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const cluster = new Cluster({
    prefix: 'demo',
    port: options.port,
    replicas: options.replicas,
    // Every replica an acceptor with its own database, so that paxos-commit is served.
    paxosCommit: options.protocols.includes('paxos-commit'),
    inventorySeed: Object.entries(SKUS).map(([k, v]) => `${k}:${v}`).join(','),
    paymentsSeed: Object.entries(ACCOUNTS).map(([k, v]) => `${k}:${v}`).join(','),
  });
  const stop = async (code: number): Promise<never> => {
    await cluster.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  console.log(`starting ${options.replicas} coordinator replicas and the inventory, payments and orders services...`);
  try {
    await cluster.start();
  } catch (error) {
    console.error(`could not start the deployment: ${(error as Error).message}`);
    return stop(1);
  }
  console.log(`coordinators at ${cluster.urls.join(', ')} (OpenAPI at ${cluster.urls[0]}/docs, ops page at ${cluster.urls[0]}/ops)`);
  const rows: Row[] = [];
  let ok = true;
  try {
    for (const protocol of options.protocols) {
      console.log(`driving ${options.orders} checkouts over ${protocol}, ${options.concurrency} at a time:`);
      const midway = protocol === 'paxos-commit' && options.killLeader ? () => killPaxosLeader(cluster) : undefined;
      const row = await runWorkload(cluster, protocol, options, midway);
      await waitForAllCompleted(cluster, row.ids);
      rows.push(row);
      const committed = row.outcomes.get('COMMITTED') ?? 0;
      if (committed === 0 || row.ids.length !== options.orders) ok = false;
    }
  } catch (error) {
    console.error(`demo failed: ${(error as Error).stack ?? (error as Error).message}`);
    return stop(1);
  }
  const check = await checkConservation({
    inventoryUrl: cluster.databases.inventory,
    paymentsUrl: cluster.databases.payments,
    ordersUrl: cluster.databases.orders,
    initialStock: SKUS,
    initialMoney: Object.values(ACCOUNTS).reduce((a, b) => a + b, 0),
  });
  printSummary(rows);
  console.log(`  conservation: ${check.ok ? 'OK' : 'FAILED'}`);
  for (const line of check.details) console.log(`    ${line}`);
  ok = ok && check.ok;
  if (options.once) await stop(ok ? 0 : 1);
  console.log(`\nstill serving at ${cluster.urls.filter((_, i) => cluster.isRunning(i)).join(', ')}; press Ctrl-C to stop`);
}

main().catch((error: Error) => {
  console.error(`demo failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
