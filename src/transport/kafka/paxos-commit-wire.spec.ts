import { describe, expect, it } from 'vitest';
import { BALLOT_ZERO, Membership, PaxosCommitMessage } from '../../protocols/paxos-commit/messages';
import { encodeEnvelope, parseEnvelope } from './envelope';
import { outcomeEnvelope, phaseEnvelope, phaseMessage } from './paxos-commit-wire';

const membership: Membership = { rms: ['inventory', 'payments'], acceptors: ['c1', 'c2', 'c3'] };
const b1 = { round: 1, replica: 'c2' };
const txnId = '3f1c2a9e-0b7d-4e5f-8a6b-1c2d3e4f5a6b';

const messages: PaxosCommitMessage[] = [
  { type: 'phase2a', txnId, membership, ballot: BALLOT_ZERO, leader: 'c1', entries: [{ rm: 'inventory', value: 'Prepared' }] },
  { type: 'phase2b', txnId, acceptor: 'c3', ballot: b1, entries: [{ rm: 'inventory', value: 'Prepared' }, { rm: 'payments', value: 'Aborted' }] },
  { type: 'phase1a', txnId, membership, ballot: b1, instances: ['payments'] },
  { type: 'phase1b', txnId, acceptor: 'c3', ballot: b1, promised: true, maxBal: b1, reports: [{ rm: 'inventory', maxVBal: BALLOT_ZERO, maxVal: 'Prepared' }, { rm: 'payments' }] },
];

describe('Paxos Commit on the wire', () => {
  it.each(messages.map((m) => [m.type, m] as const))('carries %s through the envelope unchanged', (_type, message) => {
    if (message.type !== 'phase1a' && message.type !== 'phase1b' && message.type !== 'phase2a' && message.type !== 'phase2b') throw new Error('not a phase message');
    const from = 'acceptor' in message ? message.acceptor : 'inventory';
    const parsed = parseEnvelope(encodeEnvelope(phaseEnvelope(message, from)));
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && phaseMessage(parsed.envelope)).toEqual(message);
  });

  it('passes a participant’s reason along with an Aborted entry only', () => {
    const envelope = phaseEnvelope(messages[1] as Extract<PaxosCommitMessage, { type: 'phase2b' }>, 'c3', new Map([['payments', 'no funds'], ['inventory', 'ignored']]));
    expect(envelope.body).toMatchObject({ entries: [{ rm: 'inventory', value: 'Prepared' }, { rm: 'payments', value: 'Aborted', reason: 'no funds' }] });
    expect(envelope.type === 'PHASE2B' && JSON.stringify(envelope.body.entries[0])).not.toContain('reason');
  });

  it('speaks COMMIT and ABORT like two-phase commit, with epoch 0', () => {
    expect(outcomeEnvelope('t', 'COMMIT', 'c1')).toMatchObject({ type: 'COMMIT', protocol: 'paxos-commit', epoch: 0, body: {} });
  });

  const base = { v: 1, txnId, protocol: 'paxos-commit', from: 'x', epoch: 0, sentAt: '2026-01-01T00:00:00.000Z' };
  it.each([
    [{ ...base, type: 'PHASE2A', body: { membership, ballot: { round: 0, replica: 'c1' }, leader: 'c1', entries: [{ rm: 'inventory', value: 'Prepared' }] } }, /round 0 goes with replica ""/],
    [{ ...base, type: 'PHASE2A', body: { membership: { rms: [], acceptors: ['c1'] }, ballot: BALLOT_ZERO, leader: 'c1', entries: [] } }, /membership.rms/],
    [{ ...base, type: 'PHASE2B', body: { ballot: b1, entries: [{ rm: 'inventory', value: 'Maybe' }] } }, /body.entries/],
    [{ ...base, type: 'PHASE1B', body: { ballot: b1, promised: 'yes', maxBal: b1, reports: [] } }, /body.promised/],
    [{ ...base, type: 'PHASE1B', body: { ballot: b1, promised: true, maxBal: b1, reports: [{ rm: 'inventory', maxVal: 'Prepared' }] } }, /come together/],
    [{ ...base, type: 'PREPARE', body: { payload: null, timeoutMs: 10 } }, /PREPARE: body.membership/],
    [{ ...base, type: 'HEARTBEAT', txnId: '', body: {} }, /HEARTBEAT: body.leader/],
  ])('rejects %j with a reason', (raw, reason) => {
    const parsed = parseEnvelope(raw);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(reason);
  });
});
