import { describe, expect, it } from 'vitest';
import { toPaxosCommitEvidence } from './paxos-commit-evidence.view';

const at = new Date('2026-01-01T00:00:00.000Z');
const run = { membership: { rms: ['inventory', 'payments'], acceptors: ['c1', 'c2', 'c3'] }, leader: 'c2', decidedBy: 'c2', decidedAt: at };
const row = (instance: string, acceptor: string, round: number, replica: string, value: 'Prepared' | 'Aborted') => ({
  instance,
  acceptor,
  ballot: { round, replica },
  value,
  learnedBy: 'c2',
  learnedAt: at,
});

describe('decision evidence', () => {
  it('names the value chosen per instance: a majority of acceptors in one ballot', () => {
    const view = toPaxosCommitEvidence(run, [
      row('inventory', 'c1', 0, '', 'Prepared'),
      row('inventory', 'c2', 0, '', 'Prepared'),
      // A minority in ballot 0, then a majority in the new leader's ballot.
      row('payments', 'c3', 0, '', 'Prepared'),
      row('payments', 'c2', 1, 'c2', 'Prepared'),
      row('payments', 'c3', 1, 'c2', 'Prepared'),
    ]);
    expect(view).toMatchObject({ acceptors: ['c1', 'c2', 'c3'], leader: 'c2', decidedBy: 'c2', decidedAt: at.toISOString() });
    expect(view.instances[0]).toMatchObject({ participant: 'inventory', chosen: 'Prepared', chosenInBallot: { round: 0, replica: '' } });
    expect(view.instances[1]).toMatchObject({ participant: 'payments', chosen: 'Prepared', chosenInBallot: { round: 1, replica: 'c2' } });
    expect(view.instances[1].accepted).toHaveLength(3);
  });

  it('shows an instance nobody has a majority for as not chosen yet', () => {
    const view = toPaxosCommitEvidence({ ...run, decidedBy: null, decidedAt: null }, [row('inventory', 'c1', 0, '', 'Prepared')]);
    expect(view.instances.map((i) => i.chosen)).toEqual([null, null]);
  });
});
