import { describe, expect, it } from 'vitest';
import { EPOCH_ZERO, ThreePhaseMessage } from './messages';
import { ParticipantEffect, ParticipantInput, ParticipantState, RmConfig, initialParticipantState, step } from './participant';
import { terminationRule } from './termination';

const config: RmConfig = { terminationTimeoutMs: 300, collectTimeoutMs: 300, queryIntervalMs: 400 };
const rms = ['rm1', 'rm2', 'rm3'];
const epoch = { round: 1, rm: 'rm1' };

function run(inputs: ParticipantInput[], state: ParticipantState) {
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
const uncertain = run([{ type: 'canCommit', rms }, { type: 'localVote', vote: 'Prepared' }], initialParticipantState('t1', 'rm1')).state;
const precommitted = run([{ type: 'preCommit', epoch: EPOCH_ZERO, from: 'tm' }], uncertain).state;
const report = (rm: string, state: 'uncertain' | 'precommitted' | 'committed' | 'aborted' | 'recovering'): ParticipantInput => ({ type: 'stateReport', rm, epoch, state });
const elect = (state: ParticipantState) => run([{ type: 'coordinatorFailed', operational: rms }], state).state;

describe('3PC termination rule (Skeen 1981; Bernstein, Hadzilacos, Goodman 7.5.2)', () => {
  it('follows the textbook cases', () => {
    expect(terminationRule(['uncertain', 'committed'])).toBe('commit');
    expect(terminationRule(['precommitted', 'aborted'])).toBe('abort');
    expect(terminationRule(['uncertain', 'precommitted'])).toBe('precommit');
    expect(terminationRule(['uncertain', 'uncertain'])).toBe('abort');
  });

  it('does not let a recovering RM tip the decision towards commit', () => {
    expect(terminationRule(['uncertain', 'recovering'])).toBe('abort');
  });
});

describe('3PC recovery coordinator', () => {
  it('aborts when every operational RM is uncertain, and tells the others', () => {
    const { state, last } = run([report('rm2', 'uncertain'), report('rm3', 'uncertain')], elect(uncertain));
    expect(state.rmState).toBe('aborted');
    expect(last).toContainEqual({ kind: 'decide', decision: 'ABORT' });
    expect(sent(last).map((s) => `${s.to}:${s.message.type}`)).toEqual(['rm2:Abort', 'rm3:Abort']);
  });

  it('pre-commits the uncertain RMs when one is pre-committed, then commits on their acks', () => {
    const collected = run([report('rm2', 'precommitted'), report('rm3', 'uncertain')], elect(uncertain));
    expect(collected.state.rmState).toBe('precommitted');
    expect(collected.last[0]).toEqual({ kind: 'persist', record: { type: 'precommitted' } });
    expect(sent(collected.last)).toEqual([{ to: 'rm3', message: { type: 'PreCommit', txnId: 't1', epoch, from: 'rm1' } }]);
    const done = run([{ type: 'preCommitAck', rm: 'rm3', epoch }], collected.state);
    expect(done.state.rmState).toBe('committed');
    expect(sent(done.last).map((s) => `${s.to}:${s.message.type}`)).toEqual(['rm2:DoCommit', 'rm3:DoCommit']);
  });

  it('commits at once when it is pre-committed itself and nobody is uncertain', () => {
    const { state } = run([report('rm2', 'precommitted'), report('rm3', 'recovering')], elect(precommitted));
    expect(state.rmState).toBe('committed');
  });

  it('adopts an outcome someone already reached', () => {
    expect(run([report('rm2', 'committed'), report('rm3', 'uncertain')], elect(uncertain)).state.rmState).toBe('committed');
    expect(run([report('rm2', 'aborted')], elect(precommitted)).state.termination?.phase).toBe('collecting');
    expect(run([report('rm2', 'aborted'), report('rm3', 'precommitted')], elect(precommitted)).state.rmState).toBe('aborted');
  });

  it('decides without RMs the failure detector declared failed', () => {
    const { state } = run([report('rm2', 'uncertain'), { type: 'timer', timer: 'collect' }], elect(uncertain));
    expect(state.rmState).toBe('aborted');
  });

  it('ignores reports for another epoch', () => {
    const elected = elect(uncertain);
    const stale = run([{ type: 'stateReport', rm: 'rm2', epoch: { round: 7, rm: 'rm3' }, state: 'committed' }], elected);
    expect(stale.state).toEqual(elected);
  });

  it('starts over above a newer epoch it is told about', () => {
    const { state, last } = run([{ type: 'stateReport', rm: 'rm2', epoch, state: 'uncertain', newerEpoch: { round: 4, rm: 'rm3' } }], elect(uncertain));
    expect(state.termination?.epoch).toEqual({ round: 5, rm: 'rm1' });
    expect(sent(last).map((s) => s.message.type)).toEqual(['StateReq', 'StateReq']);
  });

  it('steps down when a higher epoch asks for its state', () => {
    const { state } = run([{ type: 'stateReq', epoch: { round: 2, rm: 'rm2' }, from: 'rm2' }], elect(uncertain));
    expect(state.termination).toBeUndefined();
    expect(state.coordinator).toBe('rm2');
  });
});
