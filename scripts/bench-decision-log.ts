/**
 * How much group commit buys the decision log: the protocol's forced writes for one 2PC
 * transaction (log it, three votes, the decision, three acks) driven by many transactions at
 * once, first with one write per database transaction (GROUP_COMMIT_MAX_BATCH=1, one commit and
 * fsync per write), then with batching. Prints writes and transactions per second, writes per
 * database transaction, and the latency of each forced write as the caller sees it.
 *
 *   npm run bench:log                     # defaults: 64 concurrent transactions, 2000 in all
 *   npm run bench:log -- --concurrency 128 --transactions 4000 --batches 1,16,256
 *
 * Real Postgres (the local cluster unless DATABASE_URL is set), the real migrations, a fresh
 * database per run. Figures vary with the machine and its load; compare rows of one run.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { decisionLogDataSourceOptions, runMigrations } from '../src/decision-log/data-source';
import { GroupCommitter } from '../src/decision-log/group-commit';
import { TypeOrmDecisionLogRepository } from '../src/decision-log/typeorm-decision-log.repository';
import { freshDatabase, uniqueSuffix } from '../test/support/infra';

const PARTICIPANTS = ['inventory', 'payments', 'orders'];

interface Options {
  readonly concurrency: number;
  readonly transactions: number;
  readonly batches: readonly number[];
}

interface Row {
  readonly maxBatch: number;
  readonly seconds: number;
  readonly writes: number;
  readonly dbTransactions: number;
  readonly latenciesMs: number[];
}

function parseArgs(argv: readonly string[]): Options {
  const value = (flag: string, fallback: string): string => {
    const i = argv.indexOf(flag);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
  };
  const positive = (flag: string, text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got '${text}'`);
    return n;
  };
  return {
    concurrency: positive('--concurrency', value('--concurrency', '64')),
    transactions: positive('--transactions', value('--transactions', '2000')),
    batches: value('--batches', '1,16,256')
      .split(',')
      .map((b) => positive('--batches', b)),
  };
}

/** One transaction's forced writes in protocol order, each awaited as the driver awaits it. */
async function oneTransaction(log: TypeOrmDecisionLogRepository, latenciesMs: number[]): Promise<number> {
  const timed = async (write: () => Promise<unknown>): Promise<void> => {
    const start = performance.now();
    await write();
    latenciesMs.push(performance.now() - start);
  };
  const id = randomUUID();
  await timed(() =>
    log.createTransaction({
      id,
      protocol: '2pc',
      participants: PARTICIPANTS.map((name) => ({ name, payload: { qty: 1 } })),
      timeoutMs: 10_000,
      idempotencyKey: null,
      requestHash: id,
      ownerId: 'bench',
      traceContext: null,
      partition: 0,
      leaseMs: 60_000,
    }),
  );
  await Promise.all(PARTICIPANTS.map((rm) => timed(() => log.appendVote(id, rm, 'YES', undefined))));
  await timed(() => log.appendDecision(id, 'COMMIT', 'every participant prepared'));
  await Promise.all(PARTICIPANTS.map((rm) => timed(() => log.appendAck(id, rm))));
  return 2 + 2 * PARTICIPANTS.length;
}

async function run(url: string, maxBatch: number, options: Options): Promise<Row> {
  const dataSource = new DataSource(decisionLogDataSourceOptions(url));
  await dataSource.initialize();
  try {
    const committer = new GroupCommitter(dataSource, maxBatch);
    const log = new TypeOrmDecisionLogRepository(dataSource, committer);
    const latenciesMs: number[] = [];
    let next = 0;
    let writes = 0;
    const worker = async (): Promise<void> => {
      while (next < options.transactions) {
        next += 1;
        const written = await oneTransaction(log, latenciesMs);
        writes += written;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const seconds = (performance.now() - start) / 1000;
    return { maxBatch, seconds, writes, dbTransactions: committer.stats().batches, latenciesMs };
  } finally {
    await dataSource.destroy();
  }
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

function print(rows: readonly Row[], options: Options): void {
  console.log(`\n${options.transactions} transactions, ${options.concurrency} at a time, ${2 + 2 * PARTICIPANTS.length} forced writes each`);
  console.log('max batch   txn/s   writes/s   writes per db txn   write p50 ms   write p99 ms');
  for (const row of rows) {
    const sorted = [...row.latenciesMs].sort((a, b) => a - b);
    console.log(
      [
        String(row.maxBatch).padStart(9),
        (options.transactions / row.seconds).toFixed(0).padStart(7),
        (row.writes / row.seconds).toFixed(0).padStart(10),
        (row.writes / row.dbTransactions).toFixed(1).padStart(19),
        percentile(sorted, 50).toFixed(1).padStart(14),
        percentile(sorted, 99).toFixed(1).padStart(14),
      ].join(' '),
    );
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  for (const maxBatch of options.batches) {
    const url = await freshDatabase(`bench_log_${uniqueSuffix()}`);
    await runMigrations(url);
    process.stdout.write(`max batch ${maxBatch}... `);
    const row = await run(url, maxBatch, options);
    console.log(`${row.seconds.toFixed(1)} s`);
    rows.push(row);
  }
  print(rows, options);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
