/**
 * 2PC and 3PC scenarios, each a transcript of one run: the coordinator crashes at the worst
 * moment. 2PC (Gray and Lamport 2006 section 3.3) blocks until it returns; 3PC (Skeen 1981)
 * finishes without it, by the termination protocol, as long as the failure detector is right;
 * under a partition it is not, and 3PC splits.
 */
import { describe, expect, it } from 'vitest';
import { faultsFor } from './faults';
import { ThreePhaseAdapter } from './protocols/three-phase.adapter';
import { TwoPhaseAdapter } from './protocols/two-phase.adapter';
import { Scenario } from './scenario';

const recordType = (r: unknown): string => (r as { type: string }).type;

describe('2PC: coordinator crash between logging the decision and sending it', () => {
  it('leaves the RMs prepared and blocked until the TM restarts, then commits them all', () => {
    const adapter = new TwoPhaseAdapter(3);
    const s = new Scenario(adapter);
    // The TM dies right after its COMMIT record is durable, before a single Commit leaves.
    s.world.crashAfterWrites = (node, records) => (node === 'tm' && records.some((r) => recordType(r) === 'decision') ? 0 : undefined);
    s.begin('t1', ['rm1', 'rm2', 'rm3']);
    s.runFor(1_000);
    expect(s.transcript).toMatch(/tm learns t1 COMMIT\n.*CRASH tm/);
    expect(s.transcript).not.toMatch(/tm->rm\d Commit t1/);
    // A full second later every RM is still prepared: it may not decide alone, and asks in vain.
    for (const rm of ['rm1', 'rm2', 'rm3']) expect(s.rmState('t1', rm)).toBe('prepared');
    expect(s.transcript).toMatch(/lost rm\d->tm Query t1/);
    s.world.crashAfterWrites = undefined;
    // The TM restarts, finds COMMIT in its log, and resends it; nobody decides anew.
    s.restart('tm');
    expect(s.runUntil(() => ['rm1', 'rm2', 'rm3'].every((rm) => s.rmState('t1', rm) === 'committed'), 2_000), s.transcript).toBe(true);
    expect(s.learned('t1').filter((l) => l.startsWith('tm:'))).toEqual(['tm:tm=COMMIT']);
    expect(s.world.violations).toEqual([]);
  });

  it('aborts by presumption when the TM crashes before its decision is durable', () => {
    const adapter = new TwoPhaseAdapter(2);
    const s = new Scenario(adapter);
    s.hold({ from: 'rm2', type: 'Vote' });
    s.begin('t1', ['rm1', 'rm2']);
    s.runFor(100);
    s.crash('tm').deliverEverything().restart('tm');
    expect(s.runUntil(() => s.rmState('t1', 'rm1') === 'aborted' && s.rmState('t1', 'rm2') === 'aborted', 2_000), s.transcript).toBe(true);
  });
});

describe('3PC: coordinator crash after PreCommit reached only some participants', () => {
  const rms = ['rm1', 'rm2', 'rm3'];
  const crashDuringPreCommit = (s: Scenario, sendsLetOut: number) => {
    s.world.crashAfterWrites = (node, records) => (node === 'tm' && records.some((r) => recordType(r) === 'precommit') ? sendsLetOut : undefined);
  };
  const allIn = (s: Scenario, state: string) => rms.every((rm) => s.rmState('t1', rm) === state);

  it('commits when PreCommit reached rm1 and rm2: the recovery coordinator pre-commits rm3 first', () => {
    const s = new Scenario(new ThreePhaseAdapter(3));
    crashDuringPreCommit(s, 2);
    s.begin('t1', rms);
    expect(s.runUntil(() => allIn(s, 'committed'), 5_000), s.transcript).toBe(true);
    // rm1, the first RM the failure detector trusts, ran the termination protocol.
    expect(s.transcript).toMatch(/rm1->rm3 PreCommit t1 epoch=\{"round":1,"rm":"rm1"\}/);
    expect(s.transcript.indexOf('rm3 learns t1 COMMIT')).toBeGreaterThan(s.transcript.indexOf('rm3->rm1 PreCommitAck'));
  });

  it('commits when PreCommit reached only rm3, although the recovery coordinator itself was uncertain', () => {
    const s = new Scenario(new ThreePhaseAdapter(3));
    s.drop({ from: 'tm', to: ['rm1', 'rm2'], type: 'PreCommit' });
    crashDuringPreCommit(s, 3);
    s.begin('t1', rms);
    expect(s.runUntil(() => allIn(s, 'committed'), 5_000), s.transcript).toBe(true);
    expect(s.transcript).toMatch(/rm3->rm1 StateReport t1 .*state=precommitted/);
  });

  it('aborts when PreCommit reached nobody: no one can have committed', () => {
    const s = new Scenario(new ThreePhaseAdapter(3));
    crashDuringPreCommit(s, 0);
    s.begin('t1', rms);
    expect(s.runUntil(() => allIn(s, 'aborted'), 5_000), s.transcript).toBe(true);
    // The TM comes back in doubt and learns the outcome from the participants.
    s.world.crashAfterWrites = undefined;
    s.restart('tm');
    expect(s.runUntil(() => s.learned('t1').includes('tm:tm=ABORT'), 2_000), s.transcript).toBe(true);
    expect(s.world.violations).toEqual([]);
  });

  it('ignores a PreCommit from the dead TM that arrives after a recovery coordinator asked (the epoch rule)', () => {
    const s = new Scenario(new ThreePhaseAdapter(3));
    // The TM's PreCommit to rm2 is delayed in the network; those to rm1 and rm3 are lost as it dies.
    s.hold({ from: 'tm', to: 'rm2', type: 'PreCommit' }).drop({ from: 'tm', to: ['rm1', 'rm3'], type: 'PreCommit' });
    // rm1 becomes recovery coordinator, finds everyone uncertain and aborts; its Abort reaches only rm3 before it dies.
    s.drop({ from: 'rm1', to: 'rm2', type: 'Abort' });
    s.world.crashAfterWrites = (node, records) => {
      if (node === 'tm' && records.some((r) => recordType(r) === 'precommit')) return 3;
      return node === 'rm1' && records.some((r) => recordType(r) === 'aborted') ? 2 : undefined;
    };
    s.begin('t1', rms);
    expect(s.runUntil(() => s.rmState('t1', 'rm3') === 'aborted', 5_000), s.transcript).toBe(true);
    expect(s.transcript).toMatch(/rm2->rm1 StateReport t1 rm=rm2 epoch=\{"round":1,"rm":"rm1"\} state=uncertain/);
    // rm3 dies too: rm2 is the only operational RM left. Now the stale PreCommit (epoch 0) arrives.
    s.crash('rm3');
    s.world.release((from, to, m) => from === 'tm' && to === 'rm2' && m.type === 'PreCommit');
    s.runFor(20);
    expect(s.transcript).toMatch(/tm->rm2 PreCommit t1 epoch=\{"round":0,"rm":""\}/);
    // Had rm2 taken it, it would now be committable and commit alone; it answered epoch 1, so it stays uncertain.
    expect(s.world.host.records('rm2', 't1', 'rm').map(recordType)).toEqual(['prepared']);
    expect(s.runUntil(() => s.rmState('t1', 'rm2') === 'aborted', 5_000), s.transcript).toBe(true);
    expect(s.world.violations).toEqual([]);
  });

  it('splits under a partition: {tm, rm1} commits while {rm2, rm3} aborts (the textbook failure)', () => {
    const adapter = new ThreePhaseAdapter(3);
    // A detector that suspects whatever it cannot reach, which is all a real one can do.
    const s = new Scenario(adapter, { faults: faultsFor('3pc', true) });
    s.begin('t1', rms);
    s.runUntil(() => adapter.coordinatorState('t1')?.tmState === 'precommitting', 1_000);
    // The partition falls after the PreCommits left but before rm2 and rm3 received theirs.
    s.drop({ from: 'tm', to: ['rm2', 'rm3'], type: 'PreCommit' });
    s.world.setPartition([['rm1', 'tm'], ['rm2', 'rm3']]);
    s.runFor(2_000);
    expect(s.rmState('t1', 'rm1')).toBe('committed');
    expect(s.rmState('t1', 'rm2')).toBe('aborted');
    expect(s.world.violations.map((v) => v.invariant)).toEqual(['tcConsistent']);
  });
});
