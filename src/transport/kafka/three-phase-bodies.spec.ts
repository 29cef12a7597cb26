import { describe, expect, it } from 'vitest';
import { parseEnvelope } from './envelope';

const envelope = (type: string, body: object, protocol = '3pc') =>
  JSON.stringify({ v: 1, type, txnId: '3f1c2a9e-0b7d-4e5f-8a6b-1c2d3e4f5a6b', protocol, from: 'inventory', epoch: 1, sentAt: '2025-01-31T12:00:00.000Z', body });
const ZERO = { round: 0, rm: '' };

describe('3pc envelopes', () => {
  it.each([
    ['PREPARE', { payload: null, timeoutMs: 1000, participants: ['inventory', 'payments'], participantTtlMs: 5000 }],
    ['PRECOMMIT', { recoveryEpoch: ZERO, role: 'coordinator', timeoutMs: 7500 }],
    ['PRECOMMIT', { recoveryEpoch: { round: 2, rm: 'payments' }, role: 'participant', timeoutMs: 12000 }],
    ['PRECOMMIT_ACK', { recoveryEpoch: ZERO }],
    ['STATE_REQ', { recoveryEpoch: { round: 1, rm: 'inventory' }, timeoutMs: 12000 }],
    ['STATE_REPORT', { recoveryEpoch: { round: 1, rm: 'inventory' }, state: 'uncertain' }],
    ['STATE_REPORT', { recoveryEpoch: { round: 1, rm: 'inventory' }, state: 'uncertain', newerEpoch: { round: 2, rm: 'orders' } }],
    ['DECISION_REQ', { role: 'participant' }],
    ['COMMIT', { role: 'coordinator' }],
    ['ABORT', { role: 'participant' }],
  ])('accepts %s %j', (type, body) => {
    expect(parseEnvelope(envelope(type, body))).toMatchObject({ ok: true });
  });

  it.each([
    ['PREPARE', { payload: null, timeoutMs: 1000 }, /participants must be a non-empty array/],
    ['PREPARE', { payload: null, timeoutMs: 1000, participants: ['a', 'a'] }, /must not repeat/],
    ['PRECOMMIT', { recoveryEpoch: ZERO, role: 'coordinator' }, /timeoutMs must be a positive number/],
    ['PRECOMMIT', { recoveryEpoch: { round: 0, rm: 'x' }, role: 'coordinator', timeoutMs: 1 }, /rm must be "" in round 0/],
    ['PRECOMMIT', { recoveryEpoch: { round: 1, rm: '' }, role: 'participant', timeoutMs: 1 }, /rm must be a participant name/],
    ['STATE_REPORT', { recoveryEpoch: ZERO, state: 'maybe' }, /state must be one of/],
    ['DECISION_REQ', {}, /role must be/],
    ['COMMIT', {}, /role must be/],
  ])('rejects %s %j', (type, body, reason) => {
    const parsed = parseEnvelope(envelope(type, body));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  it('leaves 2pc COMMIT and PREPARE as they were', () => {
    expect(parseEnvelope(envelope('COMMIT', {}, '2pc'))).toMatchObject({ ok: true });
    expect(parseEnvelope(envelope('PREPARE', { payload: null, timeoutMs: 1000 }, '2pc'))).toMatchObject({ ok: true });
  });
});
