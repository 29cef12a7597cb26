import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppConfig } from '../../config/app-config';
import { Envelope } from '../../transport/kafka/envelope';
import { KafkaPublisher } from '../../transport/kafka/kafka-publisher';
import { FailureDetector, HeartbeatTable } from './failure-detector';

const replicas = ['c1', 'c2', 'c3'];

describe('failure detector (eventually perfect, leader = first trusted replica)', () => {
  it('trusts everyone at first, so replicas starting together agree on the first one', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 1000);
    expect(table.leader(1000)).toBe('c1');
    expect(table.leader(1500)).toBe('c1');
  });

  it('suspects a replica silent for longer than the timeout and moves on to the next', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0);
    table.heard('c2', 400);
    expect(table.leader(600)).toBe('c2');
    expect(table.leader(901)).toBe('c3');
  });

  it('trusts a suspected replica again when it is heard from, and itself always', () => {
    const table = new HeartbeatTable('c2', replicas, 500, 0);
    expect(table.leader(2000)).toBe('c2');
    table.heard('c1', 2100);
    expect(table.leader(2200)).toBe('c1');
  });

  it('judges a heartbeat by when it arrives, whatever its sender says about when it was sent', () => {
    // The table is never given the sender's sentAt: a heartbeat whose sentAt is an hour in the
    // past (read late by a starved host) or in the future (a skewed clock) is fresh on arrival.
    const table = new HeartbeatTable('c3', replicas, 500, 10_000);
    table.heard('c1', 10_450);
    expect(table.trusts('c1', 10_900)).toBe(true);
    expect(table.trusts('c1', 10_951)).toBe(false);
  });

  it('ignores replicas outside the membership', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0);
    table.heard('c9', 1000);
    expect(table.leader(1000)).toBe('c3');
  });

  it('doubles the timeout of a replica each time it was wrongly suspected, up to 8x', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0);
    table.heard('c1', 100);
    expect(table.timeoutOf('c1')).toBe(500);
    // Silent for 700 ms, longer than 500: it was suspected, and is alive after all.
    table.heard('c1', 800);
    expect(table.timeoutOf('c1')).toBe(1000);
    expect(table.trusts('c1', 1700)).toBe(true);
    let now = 800;
    for (const timeout of [2000, 4000, 4000]) {
      now += table.timeoutOf('c1') + 1;
      expect(table.trusts('c1', now)).toBe(false);
      table.heard('c1', now);
      expect(table.timeoutOf('c1')).toBe(timeout);
    }
  });

  it('does not count a real restart as a mistake: a new incarnation resets the timeout', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0);
    table.heard('c1', 100, 'first');
    table.heard('c1', 800, 'first');
    expect(table.timeoutOf('c1')).toBe(1000);
    // Killed and started again: silent for longer than its timeout, then heard as a new process.
    table.heard('c1', 5000, 'second');
    expect(table.timeoutOf('c1')).toBe(500);
    expect(table.trusts('c1', 5400)).toBe(true);
    expect(table.trusts('c1', 5600)).toBe(false);
  });

  it('lets a grown timeout shrink back after a long enough run of trust, never below the configured one', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0, { decayAfterMs: 5000 });
    table.heard('c1', 600);
    table.heard('c1', 1700);
    expect(table.timeoutOf('c1')).toBe(2000);
    const beatUntil = (end: number, from: number): void => {
      for (let t = from; t <= end; t += 200) table.heard('c1', t);
    };
    beatUntil(6500, 1900);
    expect(table.timeoutOf('c1')).toBe(2000);
    beatUntil(6900, 6700);
    expect(table.timeoutOf('c1')).toBe(1000);
    beatUntil(20_000, 7100);
    expect(table.timeoutOf('c1')).toBe(500);
  });

  it('a replica whose own timer fires later than the timeout stops trusting itself until on time for a timeout', () => {
    const table = new HeartbeatTable('c1', replicas, 500, 0);
    table.heard('c2', 100);
    expect(table.ticked(20, 200)).toBe(false);
    expect(table.leader(200)).toBe('c1');
    // The tick due at 400 came at 1000: the host was starved for longer than anyone waits.
    table.heard('c2', 1000);
    expect(table.ticked(600, 1000)).toBe(true);
    expect(table.trusts('c1', 1000)).toBe(false);
    expect(table.leader(1000)).toBe('c2');
    expect(table.ticked(0, 1200)).toBe(true);
    expect(table.leader(1499)).toBe('c2');
    expect(table.ticked(0, 1500)).toBe(false);
    expect(table.leader(1500)).toBe('c1');
  });

  it('a late tick within the timeout does not step a replica down', () => {
    const table = new HeartbeatTable('c1', replicas, 500, 0);
    expect(table.ticked(499, 700)).toBe(false);
    expect(table.leader(700)).toBe('c1');
  });
});

describe('FailureDetector on the receiver clock', () => {
  const config = {
    coordinatorId: 'c3',
    topicPrefix: 't',
    paxosCommit: { acceptors: replicas, suspectAfterMs: 500, heartbeatIntervalMs: 100 },
  } as unknown as AppConfig;
  const heartbeat = (from: string, sentAt: string): Envelope => ({ v: 1, type: 'HEARTBEAT', txnId: '', protocol: 'paxos-commit', from, epoch: 0, sentAt, body: { leader: from } });

  afterEach(() => vi.useRealTimers());

  it('counts a heartbeat sent long ago or in the future from when it arrives', () => {
    vi.useFakeTimers({ toFake: ['performance', 'setInterval', 'clearInterval', 'Date'] });
    const published: unknown[] = [];
    const detector = new FailureDetector(config, { publish: async (m: unknown[]) => void published.push(...m) } as unknown as KafkaPublisher);
    detector.onModuleInit();
    vi.advanceTimersByTime(400);
    detector.heard(heartbeat('c1', '1970-01-01T00:00:00.000Z'));
    detector.heard(heartbeat('c2', '2999-01-01T00:00:00.000Z'));
    vi.advanceTimersByTime(450);
    // 850 ms after start, 450 ms after arrival: both still within the 500 ms timeout.
    expect(detector.trusts('c1')).toBe(true);
    expect(detector.leader()).toBe('c1');
    vi.advanceTimersByTime(150);
    // A sentAt in the future buys nothing: c2 is suspected 500 ms after it arrived, like c1,
    // and the tick at 1000 ms names this replica the leader.
    expect(detector.trusts('c1')).toBe(false);
    expect(detector.trusts('c2')).toBe(false);
    expect(detector.leader()).toBe('c3');
    expect(published.length).toBeGreaterThan(0);
    detector.onApplicationShutdown();
  });
});
