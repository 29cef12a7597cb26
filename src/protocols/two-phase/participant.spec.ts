import { describe, expect, it } from 'vitest';
import { ParticipantEffect, ParticipantInput, ParticipantState, RmConfig, initialParticipantState, step } from './participant';

const config: RmConfig = { queryIntervalMs: 500 };

function run(inputs: ParticipantInput[], state: ParticipantState = initialParticipantState('t1', 'rm1')) {
  let last: readonly ParticipantEffect[] = [];
  for (const input of inputs) {
    const result = step(state, input, config);
    state = result.state;
    last = result.effects;
  }
  return { state, last };
}

const sent = (effects: readonly ParticipantEffect[]) => effects.flatMap((e) => (e.kind === 'send' ? [e.message] : []));
const prepared = run([{ type: 'prepare' }, { type: 'localVote', vote: 'Prepared' }]).state;

describe('two-phase participant (TwoPhase.tla RM actions)', () => {
  it('asks the driver to run the prepare handler once', () => {
    const first = run([{ type: 'prepare' }]);
    expect(first.state.rmState).toBe('preparing');
    expect(first.last).toEqual([{ kind: 'runPrepare' }]);
    expect(run([{ type: 'prepare' }], first.state).last).toEqual([]);
  });

  it('makes prepared durable before the Prepared vote leaves (RMPrepare)', () => {
    const { state, last } = run([{ type: 'prepare' }, { type: 'localVote', vote: 'Prepared' }]);
    expect(state.rmState).toBe('prepared');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'prepared' } });
    expect(sent(last)).toEqual([{ type: 'Vote', txnId: 't1', rm: 'rm1', vote: 'Prepared' }]);
  });

  it('starts asking the TM as soon as it is in doubt, not only after a restart', () => {
    const { last } = run([{ type: 'prepare' }, { type: 'localVote', vote: 'Prepared' }]);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'query', afterMs: 500 });
    expect(sent(run([{ type: 'timer', timer: 'query' }], prepared).last)).toEqual([{ type: 'Query', txnId: 't1', rm: 'rm1' }]);
  });

  it('aborts on its own when the handler says no (RMChooseToAbort)', () => {
    const { state, last } = run([{ type: 'prepare' }, { type: 'localVote', vote: 'Aborted', reason: 'no stock' }]);
    expect(state.rmState).toBe('aborted');
    expect(last).toContainEqual({ kind: 'decide', decision: 'ABORT' });
    expect(sent(last)).toEqual([{ type: 'Vote', txnId: 't1', rm: 'rm1', vote: 'Aborted', reason: 'no stock' }]);
  });

  it('repeats its vote to a duplicate Prepare instead of preparing again', () => {
    expect(sent(run([{ type: 'prepare' }], prepared).last)).toEqual([{ type: 'Vote', txnId: 't1', rm: 'rm1', vote: 'Prepared' }]);
  });

  it('commits after its Prepared vote and acknowledges (RMRcvCommitMsg)', () => {
    const { state, last } = run([{ type: 'commit' }], prepared);
    expect(state.rmState).toBe('committed');
    expect(last.map((e) => e.kind)).toEqual(['persist', 'decide', 'send']);
  });

  it('refuses a Commit it never voted for', () => {
    expect(run([{ type: 'commit' }]).state.rmState).toBe('working');
    expect(run([{ type: 'prepare' }, { type: 'commit' }]).state.rmState).toBe('preparing');
  });

  it('never leaves an outcome: Abort after commit is ignored, a repeated Commit is acknowledged again', () => {
    const committed = run([{ type: 'commit' }], prepared).state;
    expect(run([{ type: 'abort' }], committed)).toEqual({ state: committed, last: [] });
    expect(sent(run([{ type: 'commit' }], committed).last)).toEqual([{ type: 'Ack', txnId: 't1', rm: 'rm1' }]);
  });

  it('lets an Abort wait while the prepare handler runs, then takes it', () => {
    const preparing = run([{ type: 'prepare' }]).state;
    expect(run([{ type: 'abort' }], preparing).state.rmState).toBe('preparing');
    expect(run([{ type: 'localVote', vote: 'Prepared' }, { type: 'abort' }], preparing).state.rmState).toBe('aborted');
  });

  it('aborts on Abort before any Prepare arrived', () => {
    expect(run([{ type: 'abort' }]).state.rmState).toBe('aborted');
  });

  it('queries the TM while in doubt after a restart, and stops once decided', () => {
    const { last } = run([{ type: 'recover' }], prepared);
    expect(sent(last)).toEqual([{ type: 'Query', txnId: 't1', rm: 'rm1' }]);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'query', afterMs: 500 });
    const committed = run([{ type: 'commit' }], prepared).state;
    expect(run([{ type: 'timer', timer: 'query' }], committed).last).toEqual([]);
  });
});
