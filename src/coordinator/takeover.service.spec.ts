/**
 * The takeover service against an in-memory log: it scans on every assignment (also an
 * unchanged one) and periodically, adopts what the log gives it that it does not run,
 * waits out another owner's lease, stops runs that another replica took over while this
 * one was paused, and retries a scan that failed.
 */
import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppConfig } from '../config/app-config';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { TransactionEvents } from '../telemetry/transaction-events';
import { PartitionOwnership } from '../transport/kafka/partition-ownership';
import { ProtocolDrivers } from './protocol-driver';
import { TakeoverService, planScan } from './takeover.service';

const SELF = 'coordinator-1';
const LEASE_MS = 1000;

function txn(id: string, fields: Partial<TransactionEntity> = {}): TransactionEntity {
  return { id, protocol: '2pc', ownerId: SELF, epoch: 1, partition: 0, leaseExpiresAt: new Date(0), createdAt: new Date(0), participants: [], ...fields } as TransactionEntity;
}

describe('planScan', () => {
  const now = 10_000;
  const running = new Set(['running-own', 'running-theirs']);
  const isActive = (id: string) => running.has(id);

  it('adopts own transactions it does not run at once, and others once their lease has expired', () => {
    const plan = planScan(
      [
        txn('running-own', { leaseExpiresAt: new Date(now + 500) }),
        txn('dropped-own', { leaseExpiresAt: new Date(now + 500) }),
        txn('expired', { ownerId: 'coordinator-2', leaseExpiresAt: new Date(now - 1) }),
        txn('leased', { ownerId: 'coordinator-2', leaseExpiresAt: new Date(now + 700) }),
      ],
      SELF,
      (id) => id === 'running-own',
      now,
    );
    expect(plan.superseded).toEqual([]);
    expect(plan.adoptable.map((t) => t.id)).toEqual(['dropped-own', 'expired']);
    expect(plan.nextExpiryAt).toBe(now + 700);
  });

  it('marks a partition superseded when a transaction running here belongs to another replica in the log', () => {
    const plan = planScan(
      [
        txn('running-own', { partition: 3, leaseExpiresAt: new Date(now + 500) }),
        txn('running-theirs', { partition: 3, ownerId: 'coordinator-2', epoch: 2, leaseExpiresAt: new Date(now + 500) }),
      ],
      SELF,
      isActive,
      now,
    );
    expect(plan.superseded).toEqual([3]);
    // The own run is resumed from the log; the other replica's waits for its lease.
    expect(plan.adoptable.map((t) => t.id)).toEqual(['running-own']);
    expect(plan.nextExpiryAt).toBe(now + 500);
  });
});

describe('TakeoverService', () => {
  let rows: TransactionEntity[];
  let failScans: number;
  let scans: number;
  let running: Set<string>;
  let adopted: string[];
  let released: number[][];
  let ownership: PartitionOwnership;
  let service: TakeoverService;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    rows = [];
    failScans = 0;
    scans = 0;
    running = new Set();
    adopted = [];
    released = [];
    const log = {
      findUnfinishedIn: async (partitions: readonly number[]) => {
        scans += 1;
        if (failScans > 0) {
          failScans -= 1;
          throw new Error('connection terminated unexpectedly');
        }
        return rows.filter((r) => partitions.includes(r.partition)).map((r) => ({ ...r }));
      },
      takeOver: async (id: string, from: { ownerId: string; epoch: number }, to: string) => {
        const row = rows.find((r) => r.id === id && r.ownerId === from.ownerId && r.epoch === from.epoch);
        if (!row || (row.ownerId !== to && row.leaseExpiresAt.getTime() > Date.now())) return null;
        Object.assign(row, { ownerId: to, epoch: row.epoch + 1 });
        return { ...row };
      },
      renewLeases: async () => 0,
      now: async () => Date.now(),
    } as unknown as DecisionLogRepository;
    const driver = {
      adopt: async (t: TransactionEntity) => {
        adopted.push(`${t.id}@${t.epoch}`);
        running.add(t.id);
      },
    };
    const drivers = {
      isActive: (id: string) => running.has(id),
      release: (partitions: readonly number[]) => {
        released.push([...partitions]);
        const gone = rows.filter((r) => partitions.includes(r.partition) && running.has(r.id));
        for (const r of gone) running.delete(r.id);
        return gone.length;
      },
      has: () => true,
      for: () => driver,
    } as unknown as ProtocolDrivers;
    ownership = new PartitionOwnership();
    const config = { coordinatorId: SELF, leaseDurationMs: LEASE_MS } as AppConfig;
    service = new TakeoverService(config, log, ownership, drivers, { emit: () => undefined } as unknown as TransactionEvents);
    service.onModuleInit();
  });

  afterEach(() => {
    service.onApplicationShutdown();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('scans on an assignment that hands back the same partitions, and resumes a run another replica took over meanwhile', async () => {
    rows.push(txn('t1', { partition: 0 }));
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(adopted).toEqual(['t1@2']);

    // Paused past the lease: another replica raised the epoch, then gave the partition back.
    Object.assign(rows[0], { ownerId: 'coordinator-2', epoch: 3, leaseExpiresAt: new Date(Date.now() - 1) });
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual([[0]]);
    expect(adopted).toEqual(['t1@2', 't1@4']);
  });

  it('adopts an own transaction dropped from memory on the periodic scan, with no assignment', async () => {
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(adopted).toEqual([]);
    // A failed step dropped it; the log still names this replica.
    rows.push(txn('stranded', { partition: 0, leaseExpiresAt: new Date(Date.now() + 60_000) }));
    await vi.advanceTimersByTimeAsync(LEASE_MS);
    expect(adopted).toEqual(['stranded@2']);
  });

  it('takes another owner’s transaction once its lease runs out', async () => {
    rows.push(txn('t2', { ownerId: 'coordinator-2', leaseExpiresAt: new Date(Date.now() + 300) }));
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(adopted).toEqual([]);
    await vi.advanceTimersByTimeAsync(400);
    expect(adopted).toEqual(['t2@2']);
  });

  it('retries a failed scan after a backoff instead of waiting for the next assignment', async () => {
    rows.push(txn('t3'));
    failScans = 2;
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(scans).toBe(1);
    expect(adopted).toEqual([]);
    // Well before the periodic scan would run.
    await vi.advanceTimersByTimeAsync(400);
    expect(scans).toBe(3);
    expect(adopted).toEqual(['t3@2']);
  });

  it('does not release anything on an unchanged assignment while the log agrees', async () => {
    rows.push(txn('t4'));
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    ownership.assign([0]);
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual([]);
    expect(adopted).toEqual(['t4@2']);
  });
});
