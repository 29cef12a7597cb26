import { describe, expect, it } from 'vitest';
import { CoordinatorEffect, CoordinatorInput, CoordinatorState, TmConfig, decisionOf, initialCoordinatorState, restoreCoordinator, step } from './coordinator';

const config: TmConfig = { voteTimeoutMs: 500, ackTimeoutMs: 300, resendIntervalMs: 200 };
const rms = ['rm1', 'rm2'];

function run(inputs: CoordinatorInput[], state: CoordinatorState = initialCoordinatorState('t1', rms)) {
  let last: readonly CoordinatorEffect[] = [];
  for (const input of inputs) {
    const result = step(state, input, config);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}

const sends = (effects: readonly CoordinatorEffect[]) => effects.flatMap((e) => (e.kind === 'send' ? [`${e.to}:${e.message.type}`] : []));
const yes = (rm: string): CoordinatorInput => ({ type: 'vote', rm, vote: 'Prepared' });
const precommitting = run([{ type: 'begin' }, yes('rm1'), yes('rm2')]);

describe('three-phase coordinator (Skeen 1981)', () => {
  it('sends CanCommit to every RM and arms the vote timeout', () => {
    const { last } = run([{ type: 'begin' }]);
    expect(sends(last)).toEqual(['rm1:CanCommit', 'rm2:CanCommit']);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'voteTimeout', afterMs: 500 });
  });

  it('logs PreCommit before sending it, once every RM voted Prepared', () => {
    expect(precommitting.state.tmState).toBe('precommitting');
    expect(precommitting.last[0]).toEqual({ kind: 'persist', record: { type: 'precommit' } });
    expect(sends(precommitting.last)).toEqual(['rm1:PreCommit', 'rm2:PreCommit']);
    expect(decisionOf(precommitting.state)).toBeUndefined();
  });

  it('commits after every PreCommit ack, logging the decision first', () => {
    const { state, last } = run([{ type: 'preCommitAck', rm: 'rm1' }, { type: 'preCommitAck', rm: 'rm2' }], precommitting.state);
    expect(decisionOf(state)).toBe('COMMIT');
    expect(last.map((e) => e.kind)).toEqual(['persist', 'decide', 'send', 'send', 'setTimer']);
    expect(sends(last)).toEqual(['rm1:DoCommit', 'rm2:DoCommit']);
  });

  it('commits on ack timeout: silent RMs count as failed', () => {
    expect(decisionOf(run([{ type: 'preCommitAck', rm: 'rm1' }, { type: 'timer', timer: 'ackTimeout' }], precommitting.state).state)).toBe('COMMIT');
  });

  it('aborts on a no vote or a vote timeout, but not after PreCommit', () => {
    expect(decisionOf(run([{ type: 'begin' }, { type: 'vote', rm: 'rm2', vote: 'Aborted' }]).state)).toBe('ABORT');
    expect(decisionOf(run([{ type: 'begin' }, yes('rm1'), { type: 'timer', timer: 'voteTimeout' }]).state)).toBe('ABORT');
    expect(run([{ type: 'timer', timer: 'voteTimeout' }], precommitting.state).last).toEqual([]);
  });

  it('restores from its log: decision, in doubt after PreCommit, or nothing at all', () => {
    expect(restoreCoordinator('t1', rms, [{ type: 'precommit' }, { type: 'decision', decision: 'COMMIT' }]).tmState).toBe('committed');
    expect(restoreCoordinator('t1', rms, [{ type: 'precommit' }]).tmState).toBe('inDoubt');
    expect(restoreCoordinator('t1', rms, []).tmState).toBe('waitingVotes');
  });

  it('aborts on recovery when no PreCommit was logged: no RM can be committable', () => {
    const { state, last } = run([{ type: 'recover' }], restoreCoordinator('t1', rms, []));
    expect(decisionOf(state)).toBe('ABORT');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'decision', decision: 'ABORT' } });
  });

  it('in doubt after recovery, asks the RMs and adopts what they decided', () => {
    const inDoubt = restoreCoordinator('t1', rms, [{ type: 'precommit' }]);
    const asked = run([{ type: 'recover' }], inDoubt);
    expect(sends(asked.last)).toEqual(['rm1:DecisionReq', 'rm2:DecisionReq']);
    expect(decisionOf(asked.state)).toBeUndefined();
    const learned = run([{ type: 'learned', decision: 'ABORT' }], inDoubt);
    expect(decisionOf(learned.state)).toBe('ABORT');
    expect(learned.last).toContainEqual({ kind: 'decide', decision: 'ABORT' });
  });

  it('does not let a learned outcome overwrite its own decision', () => {
    const committed = run([{ type: 'preCommitAck', rm: 'rm1' }, { type: 'preCommitAck', rm: 'rm2' }], precommitting.state).state;
    expect(run([{ type: 'learned', decision: 'ABORT' }], committed).state).toEqual(committed);
  });

  it('resends the decision until acknowledged and answers a decision request', () => {
    const committed = run([{ type: 'preCommitAck', rm: 'rm1' }, { type: 'preCommitAck', rm: 'rm2' }, { type: 'ack', rm: 'rm1' }], precommitting.state).state;
    expect(sends(run([{ type: 'timer', timer: 'resend' }], committed).last)).toEqual(['rm2:DoCommit']);
    expect(sends(run([{ type: 'decisionReq', from: 'rm1' }], committed).last)).toEqual(['rm1:DoCommit']);
  });

  it('counts acks from its own RMs only', () => {
    const committed = run([{ type: 'preCommitAck', rm: 'rm1' }, { type: 'preCommitAck', rm: 'rm2' }, { type: 'ack', rm: 'rm1' }], precommitting.state).state;
    expect(run([{ type: 'ack', rm: 'stranger' }], committed).state.acked).toEqual(['rm1']);
  });
});
