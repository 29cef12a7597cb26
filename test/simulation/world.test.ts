/**
 * The simulator itself: it keeps the durability rule like a production driver, replays a
 * seed exactly, and its liveness check fails when a protocol does not finish.
 */
import { describe, expect, it } from 'vitest';
import { Decision } from '../../src/protocols/common/effects';
import { Delivery, Host, ProtocolAdapter, SimEffect, SimMessage } from './adapter';
import { TwoPhaseAdapter } from './protocols/two-phase.adapter';
import { runSeed } from './run';
import { World } from './world';

/** A core that lists its send before its write: the driver must still write first. */
class SendsBeforeWriting extends TwoPhaseAdapter {
  step(node: string, delivery: Delivery, host: Host): readonly SimEffect[] {
    if (node === 'tm' && (delivery.input as { type: string }).type === 'begin') {
      return [
        { kind: 'send', to: 'rm1', message: { type: 'Abort', txnId: delivery.txnId } },
        { kind: 'persist', record: { type: 'decision', decision: 'ABORT' as Decision, reason: 'test' } },
      ];
    }
    return super.step(node, delivery, host);
  }
}

describe('simulated world', () => {
  it('makes a step\'s writes durable before any of its sends leaves (effects.ts rule)', () => {
    const seenWhenSending: unknown[][] = [];
    class SpyWorld extends World {
      send(from: string, to: string, message: SimMessage, depth: number): void {
        if (from === 'tm') seenWhenSending.push([...this.host.records('tm', message.txnId, 'tm')]);
        super.send(from, to, message, depth);
      }
    }
    const world = new SpyWorld(new SendsBeforeWriting(1), { seed: 3 });
    world.begin('t1', ['rm1']);
    expect(seenWhenSending).toEqual([[{ type: 'decision', decision: 'ABORT', reason: 'test' }]]);
  });

  it('replays a seed exactly and varies with the seed', () => {
    const a = runSeed('paxos-commit', 42, { steps: 800, partitions: true, transcript: true });
    const b = runSeed('paxos-commit', 42, { steps: 800, partitions: true, transcript: true });
    const c = runSeed('paxos-commit', 43, { steps: 800, partitions: true, transcript: true });
    expect(a.transcript).toEqual(b.transcript);
    expect(a.transcript).not.toEqual(c.transcript);
    expect(a.transcript.some((line) => line.includes('CRASH'))).toBe(true);
  });

  it('reports a transaction that does not finish after healing as a termination violation', () => {
    // A TM that forgets its log on restart: prepared RMs can never finish.
    class AmnesiacTm extends TwoPhaseAdapter {
      restart(node: string, host: Host): Delivery[] {
        return node === 'tm' ? [] : super.restart(node, host);
      }
    }
    const makeAdapter = (): ProtocolAdapter => new AmnesiacTm();
    const results = [1, 2, 3, 4, 5, 6].map((seed) => runSeed('2pc', seed, { steps: 1500, partitions: false, adapter: makeAdapter }));
    const names = results.flatMap((r) => r.violations.map((v) => v.invariant));
    expect(names).toContain('termination');
  });
});
