import { describe, expect, it } from 'vitest';
import { CommitSnapshot, checkCommitInvariants, decisionStable, tcConsistent, validity } from './invariants';

const base: CommitSnapshot = { rms: ['rm1', 'rm2'], rmState: {}, everPrepared: [], learned: [] };
const snap = (over: Partial<CommitSnapshot>): CommitSnapshot => ({ ...base, ...over });

describe('tcConsistent', () => {
  it('holds while RMs are still working or prepared', () => {
    expect(tcConsistent(snap({ rmState: { rm1: 'prepared', rm2: 'working' } }))).toBeUndefined();
  });

  it('fails when one RM committed and another aborted', () => {
    const v = tcConsistent(snap({ rmState: { rm1: 'committed', rm2: 'aborted' } }));
    expect(v?.invariant).toBe('tcConsistent');
    expect(v?.detail).toContain('rm1');
  });

  it('fails when a TM learned COMMIT but an RM aborted', () => {
    const v = tcConsistent(snap({ rmState: { rm1: 'aborted' }, learned: [{ observer: 'tm', decision: 'COMMIT' }] }));
    expect(v?.invariant).toBe('tcConsistent');
  });

  it('fails when two leaders learned different outcomes', () => {
    const learned = [
      { observer: 'r0', decision: 'COMMIT' as const },
      { observer: 'r1', decision: 'ABORT' as const },
    ];
    expect(tcConsistent(snap({ learned }))?.invariant).toBe('tcConsistent');
  });
});

describe('validity', () => {
  it('allows ABORT without any prepare', () => {
    expect(validity(snap({ rmState: { rm1: 'aborted' }, learned: [{ observer: 'tm', decision: 'ABORT' }] }))).toBeUndefined();
  });

  it('forbids COMMIT unless every RM prepared', () => {
    const v = validity(snap({ rmState: { rm1: 'committed' }, everPrepared: ['rm1'] }));
    expect(v).toEqual({ invariant: 'validity', detail: 'COMMIT although rm2 never prepared' });
  });

  it('accepts COMMIT after every RM prepared', () => {
    expect(validity(snap({ rmState: { rm1: 'committed' }, everPrepared: ['rm1', 'rm2'] }))).toBeUndefined();
  });
});

describe('decisionStable', () => {
  it('fails when a committed RM is later seen aborted', () => {
    const before = snap({ rmState: { rm1: 'committed' } });
    const after = snap({ rmState: { rm1: 'aborted' } });
    expect(decisionStable(before, after)?.invariant).toBe('decisionStable');
  });

  it('fails when an RM forgets its outcome', () => {
    expect(decisionStable(snap({ rmState: { rm1: 'aborted' } }), snap({ rmState: {} }))?.detail).toContain('nothing');
  });

  it('fails when one observer announces two outcomes', () => {
    const learned = [
      { observer: 'tm', decision: 'ABORT' as const },
      { observer: 'tm', decision: 'COMMIT' as const },
    ];
    expect(decisionStable(base, snap({ learned }))?.invariant).toBe('decisionStable');
  });

  it('lets prepared RMs move on to an outcome', () => {
    expect(decisionStable(snap({ rmState: { rm1: 'prepared' } }), snap({ rmState: { rm1: 'committed' } }))).toBeUndefined();
  });
});

describe('checkCommitInvariants', () => {
  it('reports agreement before validity', () => {
    const after = snap({ rmState: { rm1: 'committed', rm2: 'aborted' } });
    expect(checkCommitInvariants(base, after)?.invariant).toBe('tcConsistent');
  });
});
