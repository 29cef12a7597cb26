/**
 * What three-phase commit writes, on a real Postgres with the real migrations: the
 * coordinator's PreCommit record and decision fenced by the owner epoch, and the
 * participant's own 3PC log with its row lock, commit-only-when-durable and in-doubt scan.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionLogDataSourceOptions, runMigrations } from '../../src/decision-log/data-source';
import { NewTransaction } from '../../src/decision-log/decision-log.repository';
import { GroupCommitter } from '../../src/decision-log/group-commit';
import { TypeOrmDecisionLogRepository } from '../../src/decision-log/typeorm-decision-log.repository';
import { PostgresThreePhaseLog } from '../../src/participant-sdk/three-phase-log.repository';
import { freshDatabase, uniqueSuffix } from '../support/infra';

let dataSource: DataSource;
let log: TypeOrmDecisionLogRepository;
let pool: Pool;

const newTxn = (): NewTransaction => ({
  id: randomUUID(),
  protocol: '3pc',
  participants: [{ name: 'inventory', payload: null }, { name: 'payments', payload: null }],
  timeoutMs: 1000,
  idempotencyKey: null,
  requestHash: 'h',
  ownerId: 'c1',
  traceContext: null,
  partition: 0,
  leaseMs: 0,
});

beforeAll(async () => {
  const url = await freshDatabase(`threepc_${uniqueSuffix()}`);
  expect(await runMigrations(url)).toContain('ThreePhasePrecommit1764043200000');
  dataSource = new DataSource(decisionLogDataSourceOptions(url));
  await dataSource.initialize();
  log = new TypeOrmDecisionLogRepository(dataSource, new GroupCommitter(dataSource, 64));
  pool = new Pool({ connectionString: url, max: 3 });
});

afterAll(async () => {
  await pool?.end();
  await dataSource?.destroy();
});

describe('3pc in the decision log', () => {
  it('records the PreCommit as state PRECOMMITTED, then the decision, at the owner epoch', async () => {
    const txn = newTxn();
    await log.createTransaction(txn);
    expect(await log.appendPreCommit(txn.id, 1)).toBe(true);
    await log.appendPreCommitAck(txn.id, 'inventory');
    const precommitted = await log.findById(txn.id);
    expect(precommitted).toMatchObject({ state: 'PRECOMMITTED', decision: null });
    expect(precommitted!.precommittedAt).not.toBeNull();
    expect(precommitted!.participants.map((p) => p.precommitAckedAt !== null)).toEqual([true, false]);
    expect((await log.list({ state: 'PRECOMMITTED', protocol: '3pc', limit: 10 })).map((t) => t.id)).toContain(txn.id);
    expect(await log.appendDecisionAtEpoch(txn.id, 1, 'COMMIT', 'every participant prepared')).toBe('COMMIT');
    expect(await log.findById(txn.id)).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT' });
    // Nothing moves once decided: a later PreCommit or a different decision is refused.
    expect(await log.appendPreCommit(txn.id, 1)).toBe(false);
    expect(await log.appendDecisionAtEpoch(txn.id, 1, 'ABORT', 'late')).toBe('COMMIT');
  });

  it('fences an owner whose epoch was raised by a takeover', async () => {
    const txn = newTxn();
    await log.createTransaction(txn);
    const taken = await log.takeOver(txn.id, { ownerId: 'c1', epoch: 1 }, 'c2', 5000);
    expect(taken?.epoch).toBe(2);
    expect(await log.appendPreCommit(txn.id, 1)).toBe(false);
    expect(await log.appendDecisionAtEpoch(txn.id, 1, 'COMMIT', 'stale owner')).toBeNull();
    expect(await log.findById(txn.id)).toMatchObject({ state: 'PREPARING', decision: null, precommittedAt: null });
    expect(await log.appendDecisionAtEpoch(txn.id, 2, 'ABORT', 'new owner')).toBe('ABORT');
  });
});

describe("the participant's 3pc log", () => {
  it('keeps a row only when a step made it durable, and finds the ones in doubt', async () => {
    const participantLog = new PostgresThreePhaseLog(pool, 'inventory');
    await participantLog.ensureSchema();
    await participantLog.ensureSchema();
    await participantLog.withLockedRow('t-none', async (locked) => expect(locked.row.rmState).toBe('working'));
    await participantLog.withLockedRow('t-prepared', (locked) => locked.update({ rmState: 'prepared', epoch: 2, participants: ['inventory', 'payments'], payload: { a: 1 } }));
    await participantLog.withLockedRow('t-pre', (locked) => locked.update({ rmState: 'precommitted', epoch: 1, participants: ['inventory'], recoveryEpoch: { round: 1, rm: 'inventory' } }));
    await participantLog.withLockedRow('t-done', (locked) => locked.update({ rmState: 'committed', epoch: 1 }));
    await expect(
      participantLog.withLockedRow('t-failed', async (locked) => {
        await locked.update({ rmState: 'prepared', epoch: 1 });
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    const inDoubt = await participantLog.findInDoubt();
    expect(inDoubt.map((r) => [r.txnId, r.rmState])).toEqual([['t-prepared', 'prepared'], ['t-pre', 'precommitted']]);
    expect(inDoubt[0]).toMatchObject({ epoch: 2, participants: ['inventory', 'payments'], payload: { a: 1 }, recoveryEpoch: null });
    expect(inDoubt[1].recoveryEpoch).toEqual({ round: 1, rm: 'inventory' });
    const rows = await pool.query(`SELECT txn_id FROM txn_participant_3pc_log WHERE txn_id IN ('t-none', 't-failed')`);
    expect(rows.rowCount).toBe(0);
    // Another participant sharing the database sees none of these.
    expect(await new PostgresThreePhaseLog(pool, 'payments').findInDoubt()).toEqual([]);
  });
});
