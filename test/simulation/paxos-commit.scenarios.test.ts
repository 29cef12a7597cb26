/**
 * Paxos Commit scenarios, each a transcript of one run (Gray and Lamport 2006 section 4;
 * Lamport, "Paxos Made Simple", section 2.2 for the safety rule of phase 2a).
 */
import { describe, expect, it } from 'vitest';
import { Ballot } from '../../src/protocols/paxos-commit/messages';
import { PaxosCommitAdapter } from './protocols/paxos-commit.adapter';
import { Scenario } from './scenario';

const phase2aOf = (s: Scenario, from: string) =>
  s.world.sent.filter((m) => m.from === from && m.type === 'phase2a');

describe('Paxos Commit scenarios', () => {
  it("a new leader learns the value B accepted from the old leader's phase 2a and proposes that value, never a new one", () => {
    const adapter = new PaxosCommitAdapter({ f: 1 });
    const s = new Scenario(adapter);
    let phase2aFromR0: Record<string, unknown>[] = [];
    s.world.intercept = (from, to, message) => {
      // rm1's own ballot-0 vote reaches only acceptor r0; rm2's reaches everyone.
      if (from === 'rm1' && message.type === 'phase2a' && to !== 'r0') return 'drop';
      // r0's leader ballot: its phase 2a reaches only acceptor B = r2.
      if (from === 'r0' && message.type === 'phase2a') {
        phase2aFromR0.push(message as unknown as Record<string, unknown>);
        return to === 'r2' ? 'deliver' : 'drop';
      }
      // The leader r0 never hears a phase 2b: it cannot decide before it dies.
      if (to === 'r0' && message.type === 'phase2b') return 'drop';
      return 'deliver';
    };

    // begin t1 at r0; rm1 and rm2 vote Prepared; r0 hears no phase 2b and times out.
    s.begin('t1', ['rm1', 'rm2'], 'r0');
    // r0 runs phase 1 in ballot (1, r0): r0 reports rm1=Prepared@0, so r0 proposes Prepared.
    s.runUntil(() => phase2aFromR0.length > 0, 2_000);
    expect(phase2aFromR0[0]).toMatchObject({ ballot: { round: 1, replica: 'r0' }, entries: [{ rm: 'rm1', value: 'Prepared' }, { rm: 'rm2', value: 'Prepared' }] });
    s.runFor(20);
    expect(adapter.acceptorState('r2', 't1')?.instances.rm1).toMatchObject({ maxVBal: { round: 1, replica: 'r0' }, maxVal: 'Prepared' });
    expect(adapter.acceptorState('r1', 't1')?.instances.rm1?.maxVal).toBeUndefined();

    // The leader dies, and its acceptor with it: only r1 and r2 (B) remain, a bare majority.
    s.crash('r0');
    phase2aFromR0 = [];
    // rm1 asks every replica for the outcome; r1 now leads and runs phase 1 in ballot (1, r1).
    expect(s.runUntil(() => s.rmState('t1', 'rm1') === 'committed' && s.rmState('t1', 'rm2') === 'committed', 5_000), s.transcript).toBe(true);

    const fromR1 = phase2aOf(s, 'r1');
    expect(fromR1.length).toBeGreaterThan(0);
    const ballot = (adapter.leaderState('r1', 't1')?.ballot ?? {}) as Ballot;
    expect(ballot.replica).toBe('r1');
    // r1 heard rm1's instance only from r1 (nothing) and r2 (Prepared in ballot (1, r0)): it must propose Prepared.
    expect(s.transcript).toMatch(/r1->r\d phase2a t1 ballot=\{"round":\d+,"replica":"r1"\} leader=r1 entries=\[\{"rm":"rm1","value":"Prepared"\}/);
    expect(s.transcript).not.toMatch(/r1->r\d phase2a t1 .*"rm":"rm1","value":"Aborted"/);
    expect(s.learned('t1')).toContain('r1:leader=COMMIT');
  });

  it('decides with F acceptors crashed (F = 2, five replicas, two down)', () => {
    const adapter = new PaxosCommitAdapter({ f: 2, phase2aFanout: 'all' });
    const s = new Scenario(adapter);
    // crash r3 and r4 before the transaction starts; r0, r1, r2 remain: a majority of five.
    s.crash('r3').crash('r4');
    s.begin('t1', ['rm1', 'rm2', 'rm3'], 'r0');
    expect(s.runUntil(() => ['rm1', 'rm2', 'rm3'].every((rm) => s.rmState('t1', rm) === 'committed'), 5_000), s.transcript).toBe(true);
    expect(s.learned('t1')).toContain('r0:leader=COMMIT');
  });

  it('decides with F acceptors crashed even when they are the ones the RMs address first', () => {
    const adapter = new PaxosCommitAdapter({ f: 1, phase2aFanout: 'majority' });
    const s = new Scenario(adapter);
    // ballot 0 goes to r0 and r1 only; r1 is down, so no instance can be chosen in ballot 0.
    s.crash('r1');
    s.begin('t1', ['rm1', 'rm2'], 'r0');
    // r0 times out and runs phase 1 with r0 and r2: r0 reports both Prepared votes, so it commits.
    expect(s.runUntil(() => s.rmState('t1', 'rm1') === 'committed' && s.rmState('t1', 'rm2') === 'committed', 5_000), s.transcript).toBe(true);
    expect(s.transcript).toMatch(/r0->r2 phase1a t1/);
  });

  it('survives the leader crashing in the middle of its phase 2', () => {
    const adapter = new PaxosCommitAdapter({ f: 1 });
    const s = new Scenario(adapter);
    // rm2's vote never arrives anywhere (its phase 2a is lost), so r0 must finish the instance itself.
    s.drop({ from: 'rm2', type: 'phase2a' });
    s.begin('t1', ['rm1', 'rm2'], 'r0');
    // r0 times out, runs phase 1, and sends phase 2a proposing Aborted for rm2; it dies right after.
    expect(s.runUntil(() => phase2aOf(s, 'r0').length > 0, 2_000)).toBe(true);
    s.crash('r0');
    // rm1 is prepared and asks around; r1 takes over with a higher ballot and finishes the job.
    expect(s.runUntil(() => s.rmState('t1', 'rm1') === 'aborted', 5_000), s.transcript).toBe(true);
    expect(s.learned('t1')).toContain('r1:leader=ABORT');
    // rm2 has voted Prepared but Aborted was chosen for its instance: it learns ABORT too once asked.
    expect(s.runUntil(() => s.rmState('t1', 'rm2') === 'aborted', 5_000), s.transcript).toBe(true);
  });

  it('never lets rival leaders choose different outcomes', () => {
    const adapter = new PaxosCommitAdapter({ f: 1 });
    const s = new Scenario(adapter);
    s.begin('t1', ['rm1', 'rm2'], 'r0');
    s.drop({ type: 'phase2b' });
    s.runFor(50);
    // Every replica now believes it leads and starts a ballot at once.
    for (const r of ['r0', 'r1', 'r2']) {
      adapter.adopt(r, 't1', ['rm1', 'rm2'], s.world.host);
      s.world.execute(r, { txnId: 't1', role: 'leader', input: { type: 'takeover' } }, 0);
    }
    s.deliverEverything();
    expect(s.runUntil(() => s.rmState('t1', 'rm1') !== 'prepared' && s.rmState('t1', 'rm1') !== undefined, 5_000), s.transcript).toBe(true);
    expect(s.world.violations).toEqual([]);
  });
});
