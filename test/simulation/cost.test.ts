/**
 * Failure-free cost of one committed transaction against Gray and Lamport 2006 (section 3.2
 * for 2PC, section 5 for Paxos Commit). How we count (docs/protocols.md says the same):
 * - messages: protocol messages between different hosts from the coordinator's receipt of the
 *   client request until every RM knows the outcome; acknowledgements of the outcome (ours
 *   are for garbage collection, the paper has none) are left out;
 * - message delays: the longest causal chain of those messages, plus one for the request to
 *   commit, which the paper's initiating RM sends and our client sends;
 * - stable-storage writes: forced writes (a write in a step that also sends or announces) made
 *   before anyone knows the outcome; writes that batch several records count once, writes an
 *   RM makes after it learned the outcome do not count.
 * Co-location follows the paper: the TM (or leader and one acceptor) on the initiating RM's
 * node, the other F acceptors on the nodes of the next F RMs.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolAdapter } from './adapter';
import { PaxosCommitAdapter } from './protocols/paxos-commit.adapter';
import { TwoPhaseAdapter } from './protocols/two-phase.adapter';
import { World } from './world';

interface Cost {
  messages: number;
  colocatedMessages: number;
  delays: number;
  writes: number;
}

function measure(adapter: ProtocolAdapter, rms: string[], host: (node: string) => string, at?: string): Cost {
  const world = new World(adapter, { seed: 7, fixedDelayMs: 5 });
  world.begin('t1', rms, at);
  const done = world.runUntil(() => rms.every((rm) => world.txns.get('t1')?.rmState[rm] === 'committed'), 10_000);
  expect(done).toBe(true);
  const messages = world.sent.filter((m) => m.from !== m.to && m.type !== 'Ack');
  return {
    messages: messages.length,
    colocatedMessages: messages.filter((m) => host(m.from) !== host(m.to)).length,
    delays: (world.txns.get('t1')?.outcomeDepth ?? 0) + 1,
    writes: world.writes.filter((w) => w.forced && !w.afterOutcome).length,
  };
}

const rmsOf = (n: number) => Array.from({ length: n }, (_, i) => `rm${i + 1}`);

describe('failure-free cost per transaction (Gray and Lamport 2006)', () => {
  for (const n of [1, 2, 3, 5]) {
    it(`2PC with N=${n}: 3N messages (paper 3N-1), 3N-3 co-located (paper 3N-3), 4 delays, N+1 writes`, () => {
      const cost = measure(new TwoPhaseAdapter(n), rmsOf(n), (node) => (node === 'tm' ? 'rm1' : node));
      // The paper's initiating RM volunteers its Prepared vote unasked; ours is asked like the others: one Prepare more.
      expect(cost.messages).toBe(3 * n);
      expect(cost.messages - 1).toBe(3 * n - 1);
      expect(cost.colocatedMessages).toBe(3 * n - 3);
      expect(cost.delays).toBe(4);
      expect(cost.writes).toBe(n + 1);
    });
  }

  for (const [n, f] of [[1, 0], [2, 1], [3, 1], [5, 1], [5, 2], [4, 3]] as const) {
    it(`Paxos Commit with N=${n}, F=${f}: ${3 * n + n * f + f} messages, ${3 * n + n * f - 3} co-located, ${f === 0 ? 4 : 5} delays, N+F+1 writes`, () => {
      const adapter = new PaxosCommitAdapter({ f, rmCount: n, phase2aFanout: 'majority' });
      // Leader and acceptor r0 live with rm1; acceptor rj with rm(j+1), as in the paper's count.
      const host = (node: string) => (node.startsWith('r') && !node.startsWith('rm') ? `rm${Number(node.slice(1)) + 1}` : node);
      const cost = measure(adapter, rmsOf(n), host, 'r0');
      // Prepare N, phase 2a N(F+1), bundled phase 2b F (r0's own is local), outcome N.
      expect(cost.messages).toBe(3 * n + n * f + f);
      expect(cost.colocatedMessages).toBe(3 * n + n * f - 3);
      // With F = 0 the only acceptor lives with the leader: phase 2b costs no message delay.
      expect(cost.delays).toBe(f === 0 ? 4 : 5);
      expect(cost.writes).toBe(n + f + 1);
    });
  }

  it('matches the paper\'s worked example: 5 RMs, F=1, co-located: 2PC 12 messages, Paxos Commit 17', () => {
    const twoPc = measure(new TwoPhaseAdapter(5), rmsOf(5), (node) => (node === 'tm' ? 'rm1' : node));
    const paxos = measure(new PaxosCommitAdapter({ f: 1, rmCount: 5, phase2aFanout: 'majority' }), rmsOf(5), (node) => (node === 'r0' ? 'rm1' : node === 'r1' ? 'rm2' : node), 'r0');
    expect([twoPc.colocatedMessages, paxos.colocatedMessages]).toEqual([12, 17]);
  });

  it('2PC is Paxos Commit with F = 0 (section 5): the same messages, delays and writes', () => {
    const paxos = measure(new PaxosCommitAdapter({ f: 0, rmCount: 3, phase2aFanout: 'majority' }), rmsOf(3), (n) => n, 'r0');
    const twoPc = measure(new TwoPhaseAdapter(3), rmsOf(3), (n) => n);
    expect(paxos).toEqual(twoPc);
  });

  it('the faster variant (phase 2b to the RMs) saves one message delay', () => {
    const cost = measure(new PaxosCommitAdapter({ f: 1, rmCount: 3, phase2aFanout: 'majority', phase2bToRms: true }), rmsOf(3), (n) => n, 'r0');
    expect(cost.delays).toBe(4);
  });
});
