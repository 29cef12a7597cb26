import { describe, expect, it } from 'vitest';
import { encodeEnvelope, parseEnvelope } from './envelope';

const vote = { v: 1, type: 'VOTE', txnId: 't-1', protocol: '2pc', from: 'inventory', epoch: 1, sentAt: '2026-01-01T00:00:00.000Z', body: { vote: 'NO', reason: 'short' } };

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
    ['{nope', /not valid JSON/],
    [[], /must be a JSON object/],
    [{ ...vote, v: 2 }, /unsupported envelope version 2/],
    [{ ...vote, type: 'HELLO' }, /unknown message type "HELLO"/],
    [{ ...vote, protocol: 'xa' }, /unknown protocol "xa"/],
    [{ ...vote, txnId: '' }, /txnId/],
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
