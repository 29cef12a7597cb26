import { describe, expect, it } from 'vitest';
import { HeartbeatTable } from './failure-detector';

const replicas = ['c1', 'c2', 'c3'];

describe('failure detector (eventually perfect, leader = first trusted replica)', () => {
  it('trusts everyone at first, so replicas starting together agree on the first one', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 1000);
    expect(table.leader(1000)).toBe('c1');
    expect(table.leader(1500)).toBe('c1');
  });

  it('suspects a replica silent for longer than the timeout and moves on to the next', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0);
    table.heard('c2', 400, 400);
    expect(table.leader(600)).toBe('c2');
    expect(table.leader(901)).toBe('c3');
  });

  it('trusts a suspected replica again when it is heard from, and itself always', () => {
    const table = new HeartbeatTable('c2', replicas, 500, 0);
    expect(table.leader(2000)).toBe('c2');
    table.heard('c1', 2100, 2100);
    expect(table.leader(2200)).toBe('c1');
  });

  it('does not let an old heartbeat read late make a dead replica look alive', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 10_000);
    table.heard('c1', 1000, 10_100);
    expect(table.trusts('c1', 10_400)).toBe(true);
    expect(table.trusts('c1', 10_600)).toBe(false);
    table.heard('c1', 99_999, 10_700);
    expect(table.trusts('c1', 11_100)).toBe(true);
  });

  it('ignores replicas outside the membership', () => {
    const table = new HeartbeatTable('c3', replicas, 500, 0);
    table.heard('c9', 1000, 1000);
    expect(table.leader(1000)).toBe('c3');
  });
});
