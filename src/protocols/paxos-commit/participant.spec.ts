import { describe, expect, it } from 'vitest';
import { BALLOT_ZERO, Membership, PaxosCommitMessage } from './messages';
import { ParticipantEffect, ParticipantInput, ParticipantState, RmConfig, initialParticipantState, restoreParticipant, step } from './participant';

const membership: Membership = { rms: ['rm1', 'rm2'], acceptors: ['A', 'B', 'C', 'D', 'E'] };
const config: RmConfig = { phase2aFanout: 'all', queryIntervalMs: 400 };
const prepare: ParticipantInput = { type: 'prepare', message: { type: 'Prepare', txnId: 't1', membership, leader: 'L' } };

function run(inputs: ParticipantInput[], state: ParticipantState = initialParticipantState('t1', 'rm1'), cfg = config) {
  let last: readonly ParticipantEffect[] = [];
  for (const input of inputs) {
    const result = step(state, input, cfg);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}

const sent = (effects: readonly ParticipantEffect[]): { to: string; message: PaxosCommitMessage }[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
const prepared = run([prepare, { type: 'localVote', vote: 'Prepared' }]).state;

describe('Paxos Commit RM (PaxosCommit.tla RMPrepare, RMChooseToAbort, RMRcv*Msg)', () => {
  it('makes its vote durable, then proposes it in ballot 0 straight to the acceptors', () => {
    const { state, last } = run([prepare, { type: 'localVote', vote: 'Prepared' }]);
    expect(state.rmState).toBe('prepared');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'prepared', membership, leader: 'L' } });
    expect(sent(last).map((s) => s.to)).toEqual(['A', 'B', 'C', 'D', 'E']);
    expect(sent(last)[0].message).toEqual({ type: 'phase2a', txnId: 't1', membership, ballot: BALLOT_ZERO, leader: 'L', entries: [{ rm: 'rm1', value: 'Prepared' }] });
  });

  it('sends ballot 0 to F+1 acceptors only in the majority fan-out', () => {
    const { last } = run([prepare, { type: 'localVote', vote: 'Prepared' }], undefined, { ...config, phase2aFanout: 'majority' });
    expect(sent(last).map((s) => s.to)).toEqual(['A', 'B', 'C']);
  });

  it('learns ABORT at once from its own no vote and still proposes Aborted', () => {
    const { state, last } = run([prepare, { type: 'localVote', vote: 'Aborted' }]);
    expect(state.rmState).toBe('aborted');
    expect(last).toContainEqual({ kind: 'decide', decision: 'ABORT' });
    expect(sent(last)[0].message).toMatchObject({ entries: [{ rm: 'rm1', value: 'Aborted' }] });
  });

  it('commits only after its own Prepared vote', () => {
    expect(run([prepare, { type: 'outcome', decision: 'COMMIT' }]).state.rmState).toBe('preparing');
    expect(run([{ type: 'outcome', decision: 'COMMIT' }], prepared).state.rmState).toBe('committed');
  });

  it('never changes an outcome', () => {
    const committed = run([{ type: 'outcome', decision: 'COMMIT' }], prepared).state;
    expect(run([{ type: 'outcome', decision: 'ABORT' }], committed)).toEqual({ state: committed, last: [] });
  });

  it('learns the outcome from phase 2b itself in the faster variant', () => {
    const entries = [{ rm: 'rm1', value: 'Prepared' as const }, { rm: 'rm2', value: 'Prepared' as const }];
    const inputs: ParticipantInput[] = ['A', 'B', 'C'].map((acceptor) => ({ type: 'phase2b', message: { type: 'phase2b', txnId: 't1', acceptor, ballot: BALLOT_ZERO, entries } }));
    expect(run(inputs.slice(0, 2), prepared).state.rmState).toBe('prepared');
    expect(run(inputs, prepared).state.rmState).toBe('committed');
  });

  it('asks every replica for the outcome while in doubt, also after a restart', () => {
    const restored = restoreParticipant('t1', 'rm1', [{ type: 'prepared', membership, leader: 'L' }]);
    const { last } = run([{ type: 'recover' }], restored);
    expect(sent(last).map((s) => `${s.to}:${s.message.type}`)).toEqual(['A:Query', 'B:Query', 'C:Query', 'D:Query', 'E:Query']);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'query', afterMs: 400 });
  });

  it('repeats the same ballot-0 vote to a repeated Prepare', () => {
    expect(sent(run([prepare], prepared).last)[0].message).toMatchObject({ type: 'phase2a', entries: [{ rm: 'rm1', value: 'Prepared' }] });
  });
});
