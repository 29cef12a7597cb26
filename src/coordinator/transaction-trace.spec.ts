/**
 * The phase spans of one transaction, recorded by a minimal tracer: every phase carries the
 * decision, including one that ended before the decision was known (3PC's prepare phase),
 * which still ends when it really ended.
 */
import { Attributes, AttributeValue, ROOT_CONTEXT, Span, SpanOptions, TimeInput, Tracer, TracerProvider, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TransactionTrace } from './transaction-trace';

interface Recorded {
  readonly name: string;
  readonly attributes: Attributes;
  startedAt: number;
  endedAt?: TimeInput;
  ended: boolean;
}

const recorded: Recorded[] = [];

const tracer: Tracer = {
  startSpan(name: string, options?: SpanOptions): Span {
    const span: Recorded = { name, attributes: { ...options?.attributes }, startedAt: performance.now(), ended: false };
    recorded.push(span);
    const api = {
      setAttribute: (key: string, value: AttributeValue) => {
        if (span.ended) throw new Error(`${name}: attribute ${key} set after the span ended`);
        span.attributes[key] = value;
        return api;
      },
      end: (endTime?: TimeInput) => {
        if (span.ended) throw new Error(`${name} ended twice`);
        span.ended = true;
        span.endedAt = endTime;
      },
    };
    return api as unknown as Span;
  },
  startActiveSpan: () => {
    throw new Error('not used');
  },
};

const provider: TracerProvider = { getTracer: () => tracer };

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});

afterAll(() => {
  trace.disable();
});

beforeEach(() => {
  recorded.length = 0;
});

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('TransactionTrace', () => {
  it('gives every 3pc phase the decision, and ends the prepare phase when PreCommit began', () => {
    const txn = new TransactionTrace('t-1', '3pc', TRACEPARENT);
    txn.startPhase('prepare', ROOT_CONTEXT);
    txn.startPhase('precommit', ROOT_CONTEXT);
    const [prepare, preCommit] = recorded;
    // Held until the decision: it cannot take an attribute once ended.
    expect(prepare.ended).toBe(false);
    txn.decided('COMMIT', ROOT_CONTEXT);
    const commit = recorded[2];
    expect(recorded.map((s) => s.name)).toEqual(['3pc prepare phase', '3pc precommit phase', '3pc commit phase']);
    for (const span of recorded) expect(span.attributes).toMatchObject({ 'txn.id': 't-1', 'txn.protocol': '3pc', 'txn.decision': 'COMMIT' });
    expect(prepare.ended && preCommit.ended).toBe(true);
    expect(prepare.endedAt).toBeGreaterThanOrEqual(prepare.startedAt);
    expect(prepare.endedAt).toBeLessThanOrEqual(preCommit.startedAt);
    // The phase the decision ends closes at once; the commit phase stays open until the transaction ends.
    expect(preCommit.endedAt).toBeUndefined();
    expect(commit.ended).toBe(false);
    txn.end();
    expect(commit.ended).toBe(true);
  });

  it('ends a held phase without a decision when the transaction is let go undecided', () => {
    const txn = new TransactionTrace('t-2', '3pc', TRACEPARENT);
    txn.startPhase('prepare', ROOT_CONTEXT);
    txn.startPhase('precommit', ROOT_CONTEXT);
    txn.end();
    expect(recorded.every((s) => s.ended && s.attributes['txn.decision'] === undefined)).toBe(true);
    expect(recorded[0].endedAt).toBeLessThanOrEqual(recorded[1].startedAt);
  });

  it('knows a decision already in the log: a recovered commit phase ends at once when it ends', () => {
    const txn = new TransactionTrace('t-3', '2pc', TRACEPARENT, 'ABORT');
    txn.startPhase('commit', ROOT_CONTEXT, { 'txn.recovered': true });
    txn.end();
    expect(recorded).toEqual([expect.objectContaining({ name: '2pc commit phase', ended: true, endedAt: undefined, attributes: expect.objectContaining({ 'txn.decision': 'ABORT' }) })]);
  });

  it('keeps 2pc as it was: the prepare phase ends with the decision, which it carries', () => {
    const txn = new TransactionTrace('t-4', '2pc', null);
    txn.startPhase('prepare', ROOT_CONTEXT);
    txn.decided('ABORT', ROOT_CONTEXT);
    expect(recorded.map((s) => [s.name, s.attributes['txn.decision'], s.ended])).toEqual([
      ['2pc prepare phase', 'ABORT', true],
      ['2pc commit phase', 'ABORT', false],
    ]);
  });
});
