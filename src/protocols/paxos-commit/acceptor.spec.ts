import { describe, expect, it } from 'vitest';
import { AcceptorConfig, AcceptorEffect, AcceptorInput, AcceptorRecord, AcceptorState, initialAcceptorState, restoreAcceptor, step } from './acceptor';
import { BALLOT_ZERO, Ballot, Membership, MessageOf, PaxosCommitMessage } from './messages';

const membership: Membership = { rms: ['rm1', 'rm2'], acceptors: ['A', 'B', 'C'] };
const config: AcceptorConfig = { phase2bToRms: false };
const b = (round: number, replica: string): Ballot => ({ round, replica });

const phase2a = (ballot: Ballot, entries: MessageOf<'phase2a'>['entries'], leader = 'L'): AcceptorInput => ({
  type: 'phase2a',
  message: { type: 'phase2a', txnId: 't1', membership, ballot, leader, entries },
});
const phase1a = (ballot: Ballot, instances = ['rm1', 'rm2']): AcceptorInput => ({
  type: 'phase1a',
  message: { type: 'phase1a', txnId: 't1', membership, ballot, instances },
});

function run(inputs: AcceptorInput[], state: AcceptorState = initialAcceptorState('t1', 'A'), cfg = config) {
  const all: AcceptorEffect[] = [];
  let last: readonly AcceptorEffect[] = [];
  for (const input of inputs) {
    const result = step(state, input, cfg);
    state = result.state;
    last = result.effects;
    all.push(...last);
  }
  return { state, last, all };
}

const sent = (effects: readonly AcceptorEffect[]): { to: string; message: PaxosCommitMessage }[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
const writes = (effects: readonly AcceptorEffect[]) => effects.filter((e) => e.kind === 'persist');

describe('Paxos Commit acceptor (PaxosCommit.tla Phase1b, Phase2b)', () => {
  it('holds back a ballot-0 Prepared until every instance has one, then writes once and sends one bundle', () => {
    const first = run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])]);
    expect(first.last).toEqual([]);
    const both = run([phase2a(BALLOT_ZERO, [{ rm: 'rm2', value: 'Prepared' }])], first.state);
    expect(writes(both.last)).toHaveLength(1);
    expect(both.last[0].kind).toBe('persist');
    expect(sent(both.last)).toEqual([
      {
        to: 'L',
        message: { type: 'phase2b', txnId: 't1', acceptor: 'A', ballot: BALLOT_ZERO, entries: [{ rm: 'rm1', value: 'Prepared' }, { rm: 'rm2', value: 'Prepared' }] },
      },
    ]);
  });

  it('reports an Aborted vote at once, since it decides the transaction', () => {
    const { last } = run([phase2a(BALLOT_ZERO, [{ rm: 'rm2', value: 'Aborted' }])]);
    expect(last.map((e) => e.kind)).toEqual(['persist', 'send']);
    expect(sent(last)[0].message).toMatchObject({ type: 'phase2b', entries: [{ rm: 'rm2', value: 'Aborted' }] });
  });

  it('sends phase 2b to every RM too in the faster variant', () => {
    const { last } = run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Aborted' }])], undefined, { phase2bToRms: true });
    expect(sent(last).map((s) => s.to)).toEqual(['L', 'rm1', 'rm2']);
  });

  it('promises a higher ballot, reporting maxVBal and maxVal, after making the promise durable', () => {
    const accepted = run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])]).state;
    const { state, last } = run([phase1a(b(1, 'L2'))], accepted);
    expect(last[0].kind).toBe('persist');
    const reply = sent(last)[0];
    expect(reply.to).toBe('L2');
    expect(reply.message).toMatchObject({
      type: 'phase1b',
      promised: true,
      reports: [{ rm: 'rm1', maxVBal: BALLOT_ZERO, maxVal: 'Prepared' }, { rm: 'rm2' }],
    });
    expect(state.instances.rm2.maxBal).toEqual(b(1, 'L2'));
  });

  it('refuses a ballot below its promise and names the higher one', () => {
    const promised = run([phase1a(b(3, 'L2'))]).state;
    const { state, last } = run([phase1a(b(2, 'L1'))], promised);
    expect(state).toEqual(promised);
    expect(sent(last)[0].message).toMatchObject({ type: 'phase1b', promised: false, maxBal: b(3, 'L2') });
  });

  it('rejects phase 2a below its promise: the RM ballot after a leader took over', () => {
    const promised = run([phase1a(b(1, 'L2'))]).state;
    const { state, last } = run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])], promised);
    expect(state.instances.rm1.maxVal).toBeUndefined();
    expect(last).toEqual([]);
  });

  it('accepts a leader ballot at once, without bundling', () => {
    const promised = run([phase1a(b(1, 'L2'))]).state;
    const { last } = run([phase2a(b(1, 'L2'), [{ rm: 'rm1', value: 'Aborted' }], 'L2')], promised);
    expect(last.map((e) => e.kind)).toEqual(['persist', 'send']);
    expect(sent(last)[0]).toMatchObject({ to: 'L2', message: { ballot: b(1, 'L2'), entries: [{ rm: 'rm1', value: 'Aborted' }] } });
  });

  it('answers a duplicate phase 2a again only once the first is durable', () => {
    const once = run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])]);
    expect(run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])], once.state).last).toEqual([]);
    const flushed = run([phase2a(BALLOT_ZERO, [{ rm: 'rm2', value: 'Prepared' }])], once.state).state;
    expect(sent(run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }])], flushed).last)).toHaveLength(1);
  });

  it('comes back from its records with every promise and accepted value', () => {
    const { all } = run([phase2a(BALLOT_ZERO, [{ rm: 'rm1', value: 'Prepared' }]), phase1a(b(2, 'L2'))]);
    const records = all.flatMap((e) => (e.kind === 'persist' ? [e.record as AcceptorRecord] : []));
    const restored = restoreAcceptor('t1', 'A', records);
    expect(restored.instances.rm1).toEqual({ maxBal: b(2, 'L2'), maxVBal: BALLOT_ZERO, maxVal: 'Prepared' });
    expect(restored.instances.rm2.maxBal).toEqual(b(2, 'L2'));
  });
});
