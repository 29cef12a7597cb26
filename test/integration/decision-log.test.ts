/** The decision log repository on a real Postgres with the real migrations. */
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionLogDataSourceOptions, runMigrations } from '../../src/decision-log/data-source';
import { NewTransaction } from '../../src/decision-log/decision-log.repository';
import { GroupCommitter } from '../../src/decision-log/group-commit';
import { TypeOrmDecisionLogRepository } from '../../src/decision-log/typeorm-decision-log.repository';
import { freshDatabase, uniqueSuffix } from '../support/infra';

let dataSource: DataSource;
let committer: GroupCommitter;
let log: TypeOrmDecisionLogRepository;

const newTxn = (over: Partial<NewTransaction> = {}): NewTransaction => ({
  id: randomUUID(),
  protocol: '2pc',
  participants: [{ name: 'inventory', payload: { sku: 'a' } }, { name: 'payments', payload: { amount: 5 } }],
  timeoutMs: 1000,
  idempotencyKey: null,
  requestHash: 'h1',
  ownerId: 'c1',
  traceContext: null,
  partition: 0,
  leaseMs: 5000,
  ...over,
});

beforeAll(async () => {
  const url = await freshDatabase(`declog_${uniqueSuffix()}`);
  const applied = await runMigrations(url);
  expect(applied[0]).toBe('DecisionLog1763769600000');
  expect(await runMigrations(url)).toEqual([]);
  dataSource = new DataSource(decisionLogDataSourceOptions(url));
  await dataSource.initialize();
  committer = new GroupCommitter(dataSource, 256);
  log = new TypeOrmDecisionLogRepository(dataSource, committer);
});

afterAll(async () => {
  await dataSource?.destroy();
});

describe('decision log', () => {
  it('logs a transaction with its participants in order', async () => {
    const txn = newTxn();
    const result = await log.createTransaction(txn);
    expect(result.created).toBe(true);
    expect(result.transaction).toMatchObject({ id: txn.id, state: 'PREPARING', decision: null, epoch: 1, completedAt: null });
    expect(result.transaction.participants.map((p) => [p.name, p.payload])).toEqual([['inventory', { sku: 'a' }], ['payments', { amount: 5 }]]);
  });

  it('returns the earlier transaction for a reused idempotency key', async () => {
    const first = await log.createTransaction(newTxn({ idempotencyKey: 'k-1' }));
    const again = await log.createTransaction(newTxn({ idempotencyKey: 'k-1', requestHash: 'h2' }));
    expect(again.created).toBe(false);
    expect(again.transaction.id).toBe(first.transaction.id);
    expect(again.transaction.requestHash).toBe('h1');
  });

  it('records votes, keeps the first decision, and completes on acks', async () => {
    const txn = newTxn();
    await log.createTransaction(txn);
    await Promise.all([log.appendVote(txn.id, 'inventory', 'YES', undefined), log.appendVote(txn.id, 'payments', 'YES', undefined)]);
    expect(await log.appendDecision(txn.id, 'COMMIT', 'every participant prepared')).toBe('COMMIT');
    expect(await log.appendDecision(txn.id, 'ABORT', 'late timeout')).toBe('COMMIT');
    expect((await log.findUnfinished()).map((t) => t.id)).toContain(txn.id);
    await log.appendAck(txn.id, 'inventory');
    await log.appendAck(txn.id, 'payments');
    await log.markComplete(txn.id);
    const found = await log.findById(txn.id);
    expect(found).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT', decisionReason: 'every participant prepared' });
    expect(found!.completedAt).not.toBeNull();
    expect(found!.participants.every((p) => p.vote === 'YES' && p.ackedAt !== null)).toBe(true);
    expect((await log.findUnfinished()).map((t) => t.id)).not.toContain(txn.id);
  });

  it('lists with filters, newest first, limited by transactions rather than rows', async () => {
    const a = newTxn();
    await log.createTransaction(a);
    await log.appendDecision(a.id, 'ABORT', 'test');
    const aborted = await log.list({ state: 'ABORTED', limit: 10 });
    expect(aborted.every((t) => t.state === 'ABORTED')).toBe(true);
    expect(aborted[0].id).toBe(a.id);
    const two = await log.list({ limit: 2 });
    expect(two).toHaveLength(2);
    expect(two[0].participants).toHaveLength(2);
  });

  it('group-commits concurrent writes into fewer database transactions, each write durable', async () => {
    const txns = Array.from({ length: 50 }, () => newTxn());
    await Promise.all(txns.map((t) => log.createTransaction(t)));
    const before = committer.stats();
    await Promise.all(txns.map((t) => log.appendDecision(t.id, 'ABORT', 'batch')));
    const after = committer.stats();
    expect(after.writes - before.writes).toBe(50);
    expect(after.batches - before.batches).toBeLessThan(50);
    const rows: { n: string }[] = await dataSource.query(`SELECT count(*) AS n FROM transactions WHERE decision_reason = 'batch'`);
    expect(Number(rows[0].n)).toBe(50);
  });

  it('does not let one failing write fail the others in its batch', async () => {
    const good = newTxn();
    await log.createTransaction(good);
    const results = await Promise.allSettled([
      log.appendDecision(good.id, 'COMMIT', 'fine'),
      committer.submit((m) => m.query('SELECT * FROM no_such_table')),
      log.appendAck(good.id, 'inventory'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await log.findById(good.id))!.decision).toBe('COMMIT');
  });

  it('summarises unfinished transactions and outcomes, and pages the unfinished ones oldest first', async () => {
    const unfinishedBefore = await log.findUnfinished();
    const older = newTxn({ protocol: 'paxos-commit' });
    const newer = newTxn({ protocol: 'paxos-commit' });
    await log.createTransaction(older);
    await log.createTransaction(newer);
    const summary = (await log.unfinishedSummary()).find((s) => s.protocol === 'paxos-commit');
    expect(summary).toMatchObject({ count: 2 });
    expect(summary!.oldestAgeMs).toBeGreaterThanOrEqual(0);
    const counts = await log.countByProtocolAndState();
    expect(counts.find((c) => c.protocol === 'paxos-commit' && c.state === 'PREPARING')?.count).toBe(2);
    const page = await log.findUnfinished(unfinishedBefore.length + 1);
    expect(page.map((t) => t.id)).toEqual([...unfinishedBefore.map((t) => t.id), older.id]);
    expect(page.at(-1)!.participants).toHaveLength(2);
    await log.appendDecision(older.id, 'ABORT', 'test');
    await log.markComplete(older.id);
    expect((await log.unfinishedSummary()).find((s) => s.protocol === 'paxos-commit')).toMatchObject({ count: 1 });
  });
});
