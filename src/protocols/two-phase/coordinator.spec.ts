import { describe, expect, it } from 'vitest';
import { CoordinatorEffect, CoordinatorInput, CoordinatorState, TmConfig, decisionOf, initialCoordinatorState, step } from './coordinator';

const config: TmConfig = { prepareTimeoutMs: 1000, resendIntervalMs: 200 };
const rms = ['rm1', 'rm2', 'rm3'];

function run(inputs: CoordinatorInput[], state: CoordinatorState = initialCoordinatorState('t1', rms)) {
  const effects: CoordinatorEffect[][] = [];
  for (const input of inputs) {
    const result = step(state, input, config);
    state = result.state;
    effects.push([...result.effects]);
  }
  return { state, effects, last: effects[effects.length - 1] ?? [] };
}

const sendsIn = (effects: readonly CoordinatorEffect[]) => effects.flatMap((e) => (e.kind === 'send' ? [`${e.to}:${e.message.type}`] : []));
const kinds = (effects: readonly CoordinatorEffect[]) => effects.map((e) => e.kind);
const prepared = (rm: string): CoordinatorInput => ({ type: 'vote', rm, vote: 'Prepared' });

describe('two-phase coordinator (TwoPhase.tla TM actions)', () => {
  it('sends Prepare to every RM and arms the prepare timeout on begin', () => {
    const { state, last } = run([{ type: 'begin' }]);
    expect(state.tmState).toBe('preparing');
    expect(sendsIn(last)).toEqual(['rm1:Prepare', 'rm2:Prepare', 'rm3:Prepare']);
    expect(last).toContainEqual({ kind: 'setTimer', timer: 'prepareTimeout', afterMs: 1000 });
  });

  it('ignores a second begin', () => {
    expect(run([{ type: 'begin' }, { type: 'begin' }]).last).toEqual([]);
  });

  it('commits only once every RM is in tmPrepared (TMCommit)', () => {
    const partial = run([{ type: 'begin' }, prepared('rm1'), prepared('rm2')]);
    expect(decisionOf(partial.state)).toBeUndefined();
    expect(partial.state.tmPrepared).toEqual(['rm1', 'rm2']);
    const { state, last } = run([prepared('rm3')], partial.state);
    expect(decisionOf(state)).toBe('COMMIT');
    expect(sendsIn(last)).toEqual(['rm1:Commit', 'rm2:Commit', 'rm3:Commit']);
  });

  it('forces the decision before any Commit leaves and before the client hears it', () => {
    const { last } = run([{ type: 'begin' }, prepared('rm1'), prepared('rm2'), prepared('rm3')]);
    const decisionAt = last.findIndex((e) => e.kind === 'persist' && e.record.type === 'decision');
    const firstSend = last.findIndex((e) => e.kind === 'send');
    const decideAt = kinds(last).indexOf('decide');
    expect(decisionAt).toBeGreaterThanOrEqual(0);
    expect(decisionAt).toBeLessThan(firstSend);
    expect(decisionAt).toBeLessThan(decideAt);
  });

  it('counts a duplicate Prepared vote once', () => {
    const { state } = run([{ type: 'begin' }, prepared('rm1'), prepared('rm1'), prepared('rm2')]);
    expect(decisionOf(state)).toBeUndefined();
  });

  it('aborts on a no vote and records the vote with its reason', () => {
    const { state, last } = run([{ type: 'begin' }, prepared('rm1'), { type: 'vote', rm: 'rm2', vote: 'Aborted', reason: 'no stock' }]);
    expect(decisionOf(state)).toBe('ABORT');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'vote', rm: 'rm2', vote: 'Aborted', reason: 'no stock' } });
    expect(last).toContainEqual({ kind: 'decide', decision: 'ABORT' });
    expect(sendsIn(last)).toEqual(['rm1:Abort', 'rm2:Abort', 'rm3:Abort']);
  });

  it('never changes a decision: a late no vote after COMMIT only repeats Commit', () => {
    const committed = run([{ type: 'begin' }, prepared('rm1'), prepared('rm2'), prepared('rm3')]).state;
    const { state, last } = run([{ type: 'vote', rm: 'rm2', vote: 'Aborted' }], committed);
    expect(decisionOf(state)).toBe('COMMIT');
    expect(sendsIn(last)).toEqual(['rm2:Commit']);
  });

  it('aborts on prepare timeout, but a timeout after the decision changes nothing', () => {
    expect(decisionOf(run([{ type: 'begin' }, { type: 'timer', timer: 'prepareTimeout' }]).state)).toBe('ABORT');
    const committed = run([{ type: 'begin' }, prepared('rm1'), prepared('rm2'), prepared('rm3')]).state;
    expect(run([{ type: 'timer', timer: 'prepareTimeout' }], committed).last).toEqual([]);
  });

  it('ignores votes from RMs outside the transaction', () => {
    expect(run([{ type: 'begin' }, prepared('rm9')]).state.tmPrepared).toEqual([]);
  });

  it('resends the decision to RMs that have not acknowledged it, then completes', () => {
    const committed = run([{ type: 'begin' }, prepared('rm1'), prepared('rm2'), prepared('rm3'), { type: 'ack', rm: 'rm1' }]);
    const resend = run([{ type: 'timer', timer: 'resend' }], committed.state);
    expect(sendsIn(resend.last)).toEqual(['rm2:Commit', 'rm3:Commit']);
    const done = run([{ type: 'ack', rm: 'rm2' }, { type: 'ack', rm: 'rm3' }], committed.state);
    expect(done.state.done).toBe(true);
    expect(done.last).toContainEqual({ kind: 'persist', record: { type: 'complete' } });
    expect(run([{ type: 'timer', timer: 'resend' }], done.state).last).toEqual([]);
  });

  it('answers a Query only once it has decided', () => {
    const preparing = run([{ type: 'begin' }, prepared('rm1')]).state;
    expect(run([{ type: 'query', rm: 'rm1' }], preparing).last).toEqual([]);
    const aborted = run([{ type: 'abortRequested', reason: 'client' }], preparing).state;
    expect(sendsIn(run([{ type: 'query', rm: 'rm1' }], aborted).last)).toEqual(['rm1:Abort']);
  });

  it('aborts when an RM that has not voted stops announcing, not when a prepared one does', () => {
    const preparing = run([{ type: 'begin' }, prepared('rm1')]).state;
    expect(run([{ type: 'participantDown', rm: 'rm1' }], preparing).last).toEqual([]);
    expect(decisionOf(run([{ type: 'participantDown', rm: 'rm2' }], preparing).state)).toBe('ABORT');
  });

  it('presumes abort when it recovers without a logged decision', () => {
    const { state, last } = run([{ type: 'recover' }], { ...initialCoordinatorState('t1', rms), tmState: 'preparing', tmPrepared: ['rm1'] });
    expect(decisionOf(state)).toBe('ABORT');
    expect(last[0]).toEqual({ kind: 'persist', record: { type: 'decision', decision: 'ABORT', reason: 'coordinator recovered without a decision' } });
  });

  it('resends a logged decision after recovery without deciding again', () => {
    const recovered: CoordinatorState = { ...initialCoordinatorState('t1', rms), tmState: 'committed', acked: ['rm3'] };
    const { last } = run([{ type: 'recover' }], recovered);
    expect(kinds(last)).not.toContain('persist');
    expect(kinds(last)).not.toContain('decide');
    expect(sendsIn(last)).toEqual(['rm1:Commit', 'rm2:Commit']);
  });

  it('completes a recovered transaction whose every ack is logged but whose completion is not', () => {
    const recovered: CoordinatorState = { ...initialCoordinatorState('t1', rms), tmState: 'committed', acked: [...rms] };
    const { state, last } = run([{ type: 'recover' }], recovered);
    expect(state.done).toBe(true);
    expect(last).toEqual([{ kind: 'persist', record: { type: 'complete' } }]);
    // The resend timer of an owner whose completion write failed finishes it the same way.
    expect(run([{ type: 'timer', timer: 'resend' }], recovered).last).toEqual([{ kind: 'persist', record: { type: 'complete' } }]);
  });
});
