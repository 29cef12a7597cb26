/**
 * A checked-out client while the server goes away: its 'error' event is heard (with no
 * listener Node would end the process), and a client that errored or could not roll back
 * goes back to the pool with the error, so the pool discards it.
 */
import { EventEmitter } from 'node:events';
import type { Pool, PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { withCheckedOutClient } from './participant-log-store';
import { PostgresParticipantLog } from './participant-log.repository';

function fakePool(query: (sql: string) => Promise<unknown>) {
  const released: unknown[] = [];
  const client = Object.assign(new EventEmitter(), {
    query: (sql: string) => query(sql),
    release: (error?: unknown) => void released.push(error),
  });
  const pool = { connect: async () => client as unknown as PoolClient } as unknown as Pool;
  return { pool, client, released };
}

describe('withCheckedOutClient', () => {
  it('hears an error event on the checked-out client and releases the client with it', async () => {
    const { pool, client, released } = fakePool(async () => ({ rows: [] }));
    const lost = new Error('terminating connection due to unexpected postmaster exit');
    await withCheckedOutClient(pool, async () => {
      // Emitting 'error' with no listener throws; here it must not.
      client.emit('error', lost);
    });
    expect(released).toEqual([lost]);
    expect(client.listenerCount('error')).toBe(0);
  });

  it('gives a healthy client back for reuse', async () => {
    const { pool, client, released } = fakePool(async () => ({ rows: [] }));
    await expect(withCheckedOutClient(pool, async () => 42)).resolves.toBe(42);
    expect(released).toEqual([undefined]);
    expect(client.listenerCount('error')).toBe(0);
  });
});

describe('ParticipantLogStore steps on a lost connection', () => {
  it('rethrows the step failure and discards a client that cannot roll back', async () => {
    const dead = new Error('Connection terminated unexpectedly');
    const { pool, released } = fakePool(async (sql) => {
      if (sql === 'BEGIN') return { rows: [] };
      throw dead;
    });
    const log = new PostgresParticipantLog(pool, 'inventory');
    await expect(log.withLockedRow('t1', async () => undefined)).rejects.toBe(dead);
    expect(released).toEqual([dead]);
  });
});
