/**
 * Group commit when the database goes away: a batch that fails with a lost connection is
 * repeated whole until the database answers (within the retry window), while a bad write is
 * still isolated from its neighbours and fails alone.
 */
import { describe, expect, it } from 'vitest';
import type { DataSource, EntityManager } from 'typeorm';
import { GroupCommitter } from './group-commit';
import { isTransientDatabaseError } from './transient-error';

const FAST = { firstDelayMs: 1, maxDelayMs: 5, giveUpAfterMs: 2_000 };

/** A data source whose transactions fail with `failures` (in order) before they run. */
function flakyDataSource(failures: unknown[]) {
  let attempts = 0;
  const dataSource = {
    transaction: async (work: (manager: EntityManager) => Promise<unknown>) => {
      attempts += 1;
      const failure = failures.shift();
      if (failure) throw failure;
      return work({} as EntityManager);
    },
  } as unknown as DataSource;
  return { dataSource, attempts: () => attempts };
}

const connectionLost = () => new Error('Connection terminated unexpectedly');
const adminShutdown = () => ({ name: 'QueryFailedError', message: 'terminating connection due to administrator command', driverError: { code: '57P01' } });

describe('GroupCommitter', () => {
  it('repeats a batch that lost its connection until it commits, and resolves every write', async () => {
    const { dataSource, attempts } = flakyDataSource([connectionLost(), adminShutdown(), Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })]);
    const committer = new GroupCommitter(dataSource, 16, FAST);
    const results = await Promise.all([committer.submit(async () => 'a'), committer.submit(async () => 'b')]);
    expect(results).toEqual(['a', 'b']);
    expect(attempts()).toBeGreaterThanOrEqual(4);
    expect(committer.stats().retries).toBe(3);
  });

  it('fails every write of the batch once the database stays away past the window', async () => {
    const failures = Array.from({ length: 1000 }, connectionLost);
    const { dataSource } = flakyDataSource(failures);
    const committer = new GroupCommitter(dataSource, 16, { firstDelayMs: 1, maxDelayMs: 2, giveUpAfterMs: 30 });
    const outcomes = await Promise.allSettled([committer.submit(async () => 'a'), committer.submit(async () => 'b')]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
  });

  it('does not repeat a bad statement; it fails alone and its neighbours commit', async () => {
    const committer = new GroupCommitter(
      {
        transaction: async (work: (manager: EntityManager) => Promise<unknown>) => work({} as EntityManager),
      } as unknown as DataSource,
      16,
      FAST,
    );
    let badRuns = 0;
    const bad = committer.submit(async () => {
      badRuns += 1;
      throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
    });
    const good = committer.submit(async () => 'ok');
    await expect(bad).rejects.toThrow(/duplicate key/);
    await expect(good).resolves.toBe('ok');
    expect(committer.stats().retries).toBe(0);
    expect(badRuns).toBeLessThanOrEqual(2);
  });
});

describe('isTransientDatabaseError', () => {
  it('tells a lost connection from a bad statement', () => {
    expect(isTransientDatabaseError(connectionLost())).toBe(true);
    expect(isTransientDatabaseError(adminShutdown())).toBe(true);
    expect(isTransientDatabaseError({ message: 'x', driverError: { code: '57P03', message: 'the database system is starting up' } })).toBe(true);
    expect(isTransientDatabaseError({ code: '08006', message: 'connection failure' })).toBe(true);
    expect(isTransientDatabaseError({ name: 'QueryRunnerProviderAlreadyReleasedError', message: 'Database connection provided by a query runner was already released' })).toBe(true);
    expect(isTransientDatabaseError({ code: '23505', message: 'duplicate key value violates unique constraint' })).toBe(false);
    expect(isTransientDatabaseError({ code: '42601', message: 'syntax error at or near "SELEC"' })).toBe(false);
    expect(isTransientDatabaseError(undefined)).toBe(false);
  });
});
