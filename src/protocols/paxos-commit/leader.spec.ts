import { describe, expect, it } from 'vitest';
import { LeaderConfig, LeaderEffect, LeaderInput, LeaderState, initialLeaderState, restoreLeader, step, valueToPropose } from './leader';
import { BALLOT_ZERO, Ballot, InstanceReport, Membership, PaxosCommitMessage, compareBallots } from './messages';
import { emptyLearner, learnPhase2b, outcomeOf } from './learner';

const membership: Membership = { rms: ['rm1', 'rm2'], acceptors: ['A', 'B', 'C'] };
const config: LeaderConfig = { prepareTimeoutMs: 500, retryIntervalMs: 300 };
const b = (round: number, replica: string): Ballot => ({ round, replica });

function run(inputs: LeaderInput[], state: LeaderState = initialLeaderState('t1', 'L', membership)) {
  let last: readonly LeaderEffect[] = [];
  for (const input of inputs) {
    const result = step(state, input, config);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}

const sent = (effects: readonly LeaderEffect[]): { to: string; message: PaxosCommitMessage }[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
const phase2b = (acceptor: string, ballot: Ballot, entries: { rm: string; value: 'Prepared' | 'Aborted' }[]): LeaderInput => ({
  type: 'phase2b',
  message: { type: 'phase2b', txnId: 't1', acceptor, ballot, entries },
});
const promise = (acceptor: string, ballot: Ballot, reports: InstanceReport[]): LeaderInput => ({
  type: 'phase1b',
  message: { type: 'phase1b', txnId: 't1', acceptor, ballot, promised: true, maxBal: ballot, reports },
});

describe('ballots', () => {
  it('order by round, then replica id, with ballot 0 below every leader ballot', () => {
    expect(compareBallots(BALLOT_ZERO, b(1, 'A'))).toBe(-1);
    expect(compareBallots(b(2, 'A'), b(1, 'Z'))).toBe(1);
    expect(compareBallots(b(2, 'A'), b(2, 'B'))).toBe(-1);
    expect(compareBallots(b(2, 'B'), b(2, 'B'))).toBe(0);
  });
});

describe('learning (section 4.2)', () => {
  it('chooses a value once a majority accepted it in the same ballot', () => {
    let learner = learnPhase2b(emptyLearner, 'A', BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }], membership.acceptors);
    expect(learner.chosen.rm1).toBeUndefined();
    learner = learnPhase2b(learner, 'A', BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }], membership.acceptors);
    expect(learner.chosen.rm1).toBeUndefined();
    learner = learnPhase2b(learner, 'B', BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }], membership.acceptors);
    expect(learner.chosen.rm1).toBe('Prepared');
  });

  it('does not add up acceptances from different ballots', () => {
    let learner = learnPhase2b(emptyLearner, 'A', BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }], membership.acceptors);
    learner = learnPhase2b(learner, 'B', b(1, 'L'), [{ rm: 'rm1', value: 'Prepared' }], membership.acceptors);
    expect(learner.chosen.rm1).toBeUndefined();
  });

  it('commits iff every instance chose Prepared, aborts on any Aborted', () => {
    expect(outcomeOf({ rm1: 'Prepared' }, ['rm1', 'rm2'])).toBeUndefined();
    expect(outcomeOf({ rm1: 'Prepared', rm2: 'Prepared' }, ['rm1', 'rm2'])).toBe('COMMIT');
    expect(outcomeOf({ rm2: 'Aborted' }, ['rm1', 'rm2'])).toBe('ABORT');
  });
});

describe('Paxos Commit leader (PaxosCommit.tla Phase1a, Phase2a, Decide)', () => {
  it('asks every RM to prepare on begin and waits for ballot 0', () => {
    const { last } = run([{ type: 'begin' }]);
    expect(sent(last).map((s) => `${s.to}:${s.message.type}`)).toEqual(['rm1:Prepare', 'rm2:Prepare']);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'retry', afterMs: 500 });
  });

  it('commits from ballot-0 phase 2b alone, without phase 1 and without writing', () => {
    const both = [{ rm: 'rm1', value: 'Prepared' as const }, { rm: 'rm2', value: 'Prepared' as const }];
    const { state, last } = run([{ type: 'begin' }, phase2b('A', BALLOT_ZERO, both), phase2b('B', BALLOT_ZERO, both)]);
    expect(state.decision).toBe('COMMIT');
    expect(last.filter((e) => e.kind === 'persist')).toEqual([]);
    expect(sent(last).map((s) => `${s.to}:${s.message.type}`)).toEqual(['rm1:Outcome', 'rm2:Outcome']);
  });

  it('aborts as soon as one instance chose Aborted', () => {
    const { state } = run([phase2b('A', BALLOT_ZERO, [{ rm: 'rm2', value: 'Aborted' }]), phase2b('C', BALLOT_ZERO, [{ rm: 'rm2', value: 'Aborted' }])]);
    expect(state.decision).toBe('ABORT');
  });

  it('on timeout makes its round durable before phase 1a for the undecided instances only', () => {
    const learned = run([phase2b('A', BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }]), phase2b('B', BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])]).state;
    const { state, last } = run([{ type: 'timer', timer: 'retry' }], learned);
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'round', round: 1 } });
    expect(state.ballot).toEqual(b(1, 'L'));
    expect(sent(last)).toHaveLength(3);
    expect(sent(last)[0].message).toMatchObject({ type: 'phase1a', ballot: b(1, 'L'), instances: ['rm2'] });
  });

  it('proposes the highest-ballot accepted value, or Aborted where none was accepted', () => {
    expect(valueToPropose([])).toBe('Aborted');
    expect(valueToPropose([{ rm: 'rm1' }, { rm: 'rm1', maxVBal: BALLOT_ZERO, maxVal: 'Prepared' }])).toBe('Prepared');
    expect(valueToPropose([{ rm: 'rm1', maxVBal: b(2, 'X'), maxVal: 'Aborted' }, { rm: 'rm1', maxVBal: b(1, 'Y'), maxVal: 'Prepared' }])).toBe('Aborted');
  });

  it('sends phase 2a only after a majority promised', () => {
    const started = run([{ type: 'takeover' }]).state;
    const one = run([promise('A', b(1, 'L'), [{ rm: 'rm1', maxVBal: BALLOT_ZERO, maxVal: 'Prepared' }, { rm: 'rm2' }])], started);
    expect(sent(one.last)).toEqual([]);
    const two = run([promise('B', b(1, 'L'), [{ rm: 'rm1' }, { rm: 'rm2' }])], one.state);
    expect(sent(two.last)[0].message).toMatchObject({
      type: 'phase2a',
      ballot: b(1, 'L'),
      entries: [{ rm: 'rm1', value: 'Prepared' }, { rm: 'rm2', value: 'Aborted' }],
    });
  });

  it('ignores promises for a ballot it no longer runs', () => {
    const started = run([{ type: 'takeover' }, { type: 'timer', timer: 'retry' }]).state;
    expect(started.ballot).toEqual(b(2, 'L'));
    const stale = run([promise('A', b(1, 'L'), []), promise('B', b(1, 'L'), [])], started);
    expect(sent(stale.last)).toEqual([]);
  });

  it('climbs above a rival ballot it was refused for', () => {
    const refused = run([
      { type: 'takeover' },
      { type: 'phase1b', message: { type: 'phase1b', txnId: 't1', acceptor: 'A', ballot: b(1, 'L'), promised: false, maxBal: b(7, 'M'), reports: [] } },
      { type: 'timer', timer: 'retry' },
    ]);
    expect(refused.state.ballot).toEqual(b(8, 'L'));
  });

  it('never reuses a durable round after a restart', () => {
    const restored = restoreLeader('t1', 'L', membership, [{ type: 'round', round: 4 }]);
    expect(run([{ type: 'takeover' }], restored).state.ballot).toEqual(b(5, 'L'));
  });

  it('answers a query only once it knows the outcome', () => {
    expect(run([{ type: 'query', rm: 'rm1' }]).last).toEqual([]);
    const aborted = run([phase2b('A', BALLOT_ZERO, [{ rm: 'rm2', value: 'Aborted' }]), phase2b('B', BALLOT_ZERO, [{ rm: 'rm2', value: 'Aborted' }])]).state;
    expect(sent(run([{ type: 'query', rm: 'rm1' }], aborted).last)).toEqual([{ to: 'rm1', message: { type: 'Outcome', txnId: 't1', decision: 'ABORT' } }]);
  });
});
