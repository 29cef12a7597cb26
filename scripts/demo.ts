/**
 * The checkout demo: a coordinator and the inventory, payments and orders services as
 * separate processes on real Postgres and Kafka, driven by a workload in which some orders
 * succeed and some fail on stock or funds; then a summary with a conservation check that
 * reads every service's own database.
 */
import { checkConservation } from '../examples/common/conservation';
import { Cluster } from '../test/support/cluster';

const SKUS = { 'sku-1': 400, 'sku-2': 150, 'sku-3': 20 } as const;
const ACCOUNTS = { 'acct-1': 200_000, 'acct-2': 60_000, 'acct-3': 3_000, 'acct-4': 400 } as const;
const PRICES = { 'sku-1': 120, 'sku-2': 900, 'sku-3': 2500 } as const;

interface Options {
  readonly once: boolean;
  readonly orders: number;
  readonly concurrency: number;
  readonly port: number;
}

function parseArgs(argv: readonly string[]): Options {
  const value = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
  return { once: argv.includes('--once'), orders: value('--orders', 300), concurrency: value('--concurrency', 8), port: value('--port', 3000) };
}

/** A small deterministic generator so that two demo runs drive the same workload. */
function* orders(count: number): Generator<{ orderId: string; sku: keyof typeof SKUS; qty: number; account: keyof typeof ACCOUNTS }> {
  let seed = 42;
  const next = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const skus = Object.keys(SKUS) as (keyof typeof SKUS)[];
  const accounts = Object.keys(ACCOUNTS) as (keyof typeof ACCOUNTS)[];
  for (let i = 0; i < count; i++) {
    yield { orderId: `order-${i + 1}`, sku: skus[Math.floor(next() * skus.length)], qty: 1 + Math.floor(next() * 3), account: accounts[Math.floor(next() * accounts.length)] };
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function runWorkload(cluster: Cluster, options: Options): Promise<{ latencies: number[]; outcomes: Map<string, number>; ids: string[] }> {
  const latencies: number[] = [];
  const outcomes = new Map<string, number>();
  const ids: string[] = [];
  const queue = [...orders(options.orders)];
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let order = queue.shift(); order; order = queue.shift()) {
      const amount = PRICES[order.sku] * order.qty;
      const started = performance.now();
      const { status, body } = await cluster.api('POST', '/v1/transactions?waitMs=30000', {
        protocol: '2pc',
        participants: [
          { name: 'inventory', payload: { sku: order.sku, qty: order.qty } },
          { name: 'payments', payload: { account: order.account, amount } },
          { name: 'orders', payload: { orderId: order.orderId, sku: order.sku, qty: order.qty, account: order.account, amount } },
        ],
      }, { 'Idempotency-Key': order.orderId });
      latencies.push(performance.now() - started);
      const key = status >= 400 ? `HTTP ${status}` : body.state === 'ABORTED' ? `ABORTED (${shortReason(body.decisionReason)})` : body.state;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (body?.id) ids.push(body.id);
      done += 1;
      if (done % Math.max(1, Math.floor(options.orders / 10)) === 0 || done === options.orders) {
        process.stdout.write(`  ${done}/${options.orders} orders  ${[...outcomes].map(([k, v]) => `${k}: ${v}`).join('  ')}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { latencies: latencies.sort((a, b) => a - b), outcomes, ids };
}

function shortReason(reason: string | null): string {
  if (!reason) return 'no reason';
  if (/stock/.test(reason)) return 'out of stock';
  if (/funds/.test(reason)) return 'insufficient funds';
  return reason.slice(0, 40);
}

async function waitForAllCompleted(cluster: Cluster, ids: readonly string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const id of ids) {
    for (;;) {
      const { body } = await cluster.api('GET', `/v1/transactions/${id}`);
      if (body.completed) break;
      if (Date.now() > deadline) throw new Error(`transaction ${id} did not complete`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function runAndCheck(cluster: Cluster, options: Options) {
  const { latencies, outcomes, ids } = await runWorkload(cluster, options);
  await waitForAllCompleted(cluster, ids);
  const check = await checkConservation({
    inventoryUrl: cluster.databases.inventory,
    paymentsUrl: cluster.databases.payments,
    ordersUrl: cluster.databases.orders,
    initialStock: SKUS,
    initialMoney: Object.values(ACCOUNTS).reduce((a, b) => a + b, 0),
  });
  return { latencies, outcomes, check };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const cluster = new Cluster({
    prefix: 'demo',
    port: options.port,
    inventorySeed: Object.entries(SKUS).map(([k, v]) => `${k}:${v}`).join(','),
    paymentsSeed: Object.entries(ACCOUNTS).map(([k, v]) => `${k}:${v}`).join(','),
  });
  const stop = async (code: number): Promise<never> => {
    await cluster.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  console.log('starting the coordinator and the inventory, payments and orders services...');
  try {
    await cluster.start();
  } catch (error) {
    console.error(`could not start the deployment: ${(error as Error).message}`);
    return stop(1);
  }
  console.log(`coordinator at ${cluster.baseUrl} (OpenAPI at ${cluster.baseUrl}/docs)`);
  console.log(`driving ${options.orders} checkouts, ${options.concurrency} at a time:`);
  const started = performance.now();
  let result: Awaited<ReturnType<typeof runAndCheck>>;
  try {
    result = await runAndCheck(cluster, options);
  } catch (error) {
    console.error(`demo failed: ${(error as Error).stack ?? (error as Error).message}`);
    return stop(1);
  }
  const { latencies, outcomes, check } = result;
  const seconds = (performance.now() - started) / 1000;

  const committed = outcomes.get('COMMITTED') ?? 0;
  const aborted = [...outcomes].filter(([k]) => k.startsWith('ABORTED')).reduce((a, [, v]) => a + v, 0);
  console.log('\nsummary (protocol 2pc)');
  console.log(`  committed ${committed}, aborted ${aborted}, other ${options.orders - committed - aborted}`);
  for (const [k, v] of outcomes) if (k.startsWith('ABORTED')) console.log(`    ${k}: ${v}`);
  console.log(`  latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ${(options.orders / seconds).toFixed(1)} transactions/s`);
  console.log(`  conservation: ${check.ok ? 'OK' : 'FAILED'}`);
  for (const line of check.details) console.log(`    ${line}`);

  const ok = check.ok && committed + aborted === options.orders && committed > 0 && aborted > 0;
  if (options.once) await stop(ok ? 0 : 1);
  console.log(`\nstill serving at ${cluster.baseUrl}; press Ctrl-C to stop`);
}

main().catch((error: Error) => {
  console.error(`demo failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
