import { describe, expect, it } from 'vitest';
import { EPOCH_ZERO, ThreePhaseMessage } from './messages';
import { ParticipantEffect, ParticipantInput, ParticipantState, RmConfig, initialParticipantState, reportedState, restoreParticipant, step } from './participant';

const config: RmConfig = { terminationTimeoutMs: 300, collectTimeoutMs: 300, queryIntervalMs: 400 };
const rms = ['rm1', 'rm2', 'rm3'];

function run(inputs: ParticipantInput[], state: ParticipantState = initialParticipantState('t1', 'rm2')) {
  let last: readonly ParticipantEffect[] = [];
  for (const input of inputs) {
    const result = step(state, input, config);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}

const sent = (effects: readonly ParticipantEffect[]): { to: string; message: ThreePhaseMessage }[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
const uncertain = run([{ type: 'canCommit', rms }, { type: 'localVote', vote: 'Prepared' }]).state;
const precommitted = run([{ type: 'preCommit', epoch: EPOCH_ZERO, from: 'tm' }], uncertain).state;
const epoch = (round: number, rm: string) => ({ round, rm });

describe('three-phase participant', () => {
  it('makes its Prepared vote durable before it leaves and starts watching the TM', () => {
    const { state, last } = run([{ type: 'canCommit', rms }, { type: 'localVote', vote: 'Prepared' }]);
    expect(state.rmState).toBe('uncertain');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'prepared', rms } });
    expect(sent(last)).toEqual([{ to: 'tm', message: { type: 'Vote', txnId: 't1', rm: 'rm2', vote: 'Prepared' } }]);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'termination', afterMs: 300 });
  });

  it('makes PreCommit durable before acknowledging it', () => {
    const { state, last } = run([{ type: 'preCommit', epoch: EPOCH_ZERO, from: 'tm' }], uncertain);
    expect(state.rmState).toBe('precommitted');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'precommitted' } });
    expect(sent(last)[0]).toEqual({ to: 'tm', message: { type: 'PreCommitAck', txnId: 't1', rm: 'rm2', epoch: EPOCH_ZERO } });
  });

  it('ignores a PreCommit from an epoch older than one it answered', () => {
    const following = run([{ type: 'stateReq', epoch: epoch(1, 'rm1'), from: 'rm1' }], uncertain).state;
    expect(run([{ type: 'preCommit', epoch: EPOCH_ZERO, from: 'tm' }], following)).toEqual({ state: following, last: [] });
  });

  it('reports its state to a recovery coordinator and follows it', () => {
    const { state, last } = run([{ type: 'stateReq', epoch: epoch(1, 'rm1'), from: 'rm1' }], precommitted);
    expect(state.coordinator).toBe('rm1');
    expect(sent(last)[0].message).toMatchObject({ type: 'StateReport', state: 'precommitted', epoch: epoch(1, 'rm1') });
  });

  it('tells an older recovery coordinator about the newer epoch instead of reporting', () => {
    const following = run([{ type: 'stateReq', epoch: epoch(2, 'rm3'), from: 'rm3' }], uncertain).state;
    const { last } = run([{ type: 'stateReq', epoch: epoch(1, 'rm1'), from: 'rm1' }], following);
    expect(sent(last)[0].message).toMatchObject({ type: 'StateReport', newerEpoch: epoch(2, 'rm3') });
  });

  it('aborts on its own when asked before it voted', () => {
    const preparing = run([{ type: 'canCommit', rms }]).state;
    const { state, last } = run([{ type: 'stateReq', epoch: epoch(1, 'rm1'), from: 'rm1' }], preparing);
    expect(state.rmState).toBe('aborted');
    expect(sent(last)[0].message).toMatchObject({ state: 'aborted' });
    expect(run([{ type: 'localVote', vote: 'Prepared' }], state).state.rmState).toBe('aborted');
  });

  it('elects the first RM the failure detector trusts as recovery coordinator', () => {
    const follower = run([{ type: 'coordinatorFailed', operational: ['rm1', 'rm2', 'rm3'] }], uncertain);
    expect(follower.state.coordinator).toBe('rm1');
    expect(sent(follower.last)).toEqual([{ to: 'rm1', message: { type: 'DecisionReq', txnId: 't1', from: 'rm2' } }]);
    const leader = run([{ type: 'coordinatorFailed', operational: ['rm2', 'rm3'] }], uncertain);
    expect(leader.state.termination?.epoch).toEqual(epoch(1, 'rm2'));
    expect(sent(leader.last).map((s) => `${s.to}:${s.message.type}`)).toEqual(['rm1:StateReq', 'rm3:StateReq']);
  });

  it('after a restart in doubt never counts in a decision, and only asks', () => {
    const restored = restoreParticipant('t1', 'rm2', [{ type: 'prepared', rms }, { type: 'precommitted' }]);
    expect(restored.recovered).toBe(true);
    expect(reportedState(restored)).toBe('recovering');
    expect(run([{ type: 'coordinatorFailed', operational: ['rm2'] }], restored).last).toEqual([]);
    expect(sent(run([{ type: 'recover' }], restored).last).map((s) => s.to)).toEqual(['tm', 'rm1', 'rm3']);
    expect(run([{ type: 'preCommit', epoch: epoch(5, 'rm1'), from: 'rm1' }], restored).last).toEqual([]);
  });

  it('takes an outcome from anyone, acknowledges it, and never changes it', () => {
    const committed = run([{ type: 'decision', decision: 'COMMIT', from: 'rm3' }], precommitted);
    expect(committed.state.rmState).toBe('committed');
    expect(sent(committed.last)).toEqual([{ to: 'rm3', message: { type: 'Ack', txnId: 't1', rm: 'rm2' } }]);
    expect(run([{ type: 'decision', decision: 'ABORT', from: 'tm' }], committed.state).state.rmState).toBe('committed');
  });

  it('answers a decision request with its outcome, or by aborting if it never voted', () => {
    const aborted = run([{ type: 'decision', decision: 'ABORT', from: 'tm' }], uncertain).state;
    expect(sent(run([{ type: 'decisionReq', from: 'rm1' }], aborted).last)[0].message.type).toBe('Abort');
    expect(run([{ type: 'decisionReq', from: 'rm1' }], uncertain).last).toEqual([]);
    expect(run([{ type: 'decisionReq', from: 'rm1' }], run([{ type: 'canCommit', rms }]).state).state.rmState).toBe('aborted');
  });
});
