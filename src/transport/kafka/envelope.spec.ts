import { describe, expect, it } from 'vitest';
import { encodeEnvelope, parseEnvelope } from './envelope';

const vote = { v: 1, type: 'VOTE', txnId: '8d5b5c0e-6a0e-4a43-9a65-0f4f3b0e2a11', protocol: '2pc', from: 'inventory', epoch: 1, sentAt: '2026-01-01T00:00:00.000Z', body: { vote: 'NO', reason: 'short' } };

describe('parseEnvelope', () => {
  it('accepts a well-formed envelope from bytes, text or an object, and round-trips it', () => {
    for (const raw of [Buffer.from(JSON.stringify(vote)), JSON.stringify(vote), vote]) {
      const parsed = parseEnvelope(raw);
      expect(parsed).toEqual({ ok: true, envelope: vote });
    }
    const parsed = parseEnvelope(vote);
    expect(parsed.ok && JSON.parse(encodeEnvelope(parsed.envelope))).toEqual(vote);
  });

  it.each([
    ['a UTC timestamp with milliseconds', { sentAt: '2026-01-01T00:00:00.000Z' }],
    ['an offset with microseconds (Python isoformat)', { sentAt: '2026-01-01T01:00:00.123456+01:00' }],
    ['an ANNOUNCE with an empty txnId', { type: 'ANNOUNCE', txnId: '', body: { name: 'inventory', protocols: ['2pc'], topic: 't.rm.inventory', instanceId: 'i1' } }],
    ['a HEARTBEAT with an empty txnId', { type: 'HEARTBEAT', txnId: '', protocol: 'paxos-commit', body: { leader: 'c1' } }],
  ])('accepts %s', (_, change) => {
    expect(parseEnvelope({ ...vote, ...change }).ok).toBe(true);
  });

  it.each([
    ['{nope', /not valid JSON/],
    [[], /must be a JSON object/],
    [{ ...vote, v: 2 }, /unsupported envelope version 2/],
    [{ ...vote, type: 'HELLO' }, /unknown message type "HELLO"/],
    [{ ...vote, protocol: 'xa' }, /unknown protocol "xa"/],
    [{ ...vote, txnId: '' }, /txnId of VOTE must be a UUID/],
    [{ ...vote, txnId: 'not-a-uuid' }, /txnId of VOTE must be a UUID, got "not-a-uuid"/],
    [{ ...vote, type: 'ACK', txnId: 42, body: { outcome: 'COMMIT' } }, /txnId must be a string/],
    [{ ...vote, sentAt: '' }, /sentAt must be an ISO-8601 timestamp/],
    [{ ...vote, sentAt: 'yesterday' }, /sentAt must be an ISO-8601 timestamp/],
    [{ ...vote, sentAt: '2026-01-01' }, /sentAt must be an ISO-8601 timestamp/],
    [{ ...vote, sentAt: '2026-13-45T00:00:00Z' }, /sentAt must be an ISO-8601 timestamp/],
    [{ ...vote, sentAt: 1767225600000 }, /sentAt must be an ISO-8601 timestamp/],
    [{ ...vote, epoch: -1 }, /epoch must be a non-negative integer/],
    [{ ...vote, body: { vote: 'MAYBE' } }, /VOTE: body.vote must be "YES" or "NO"/],
    [{ ...vote, type: 'ACK', body: {} }, /ACK: body.outcome/],
    [{ ...vote, type: 'PREPARE', body: { payload: 1, timeoutMs: 0 } }, /PREPARE: body.timeoutMs/],
    [{ ...vote, type: 'ANNOUNCE', body: { name: 'Bad Name', protocols: ['2pc'], topic: 't', instanceId: 'i' } }, /ANNOUNCE: body.name/],
  ])('rejects %j with a reason', (raw, reason) => {
    const parsed = parseEnvelope(raw);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(reason);
  });
});
