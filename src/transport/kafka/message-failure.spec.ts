import { describe, expect, it } from 'vitest';
import { describeFailure, handleOrReason, isTransient } from './message-failure';

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });
const noWait = { attempts: 4, backoffMs: 100 };

describe('inbound message failures', () => {
  it.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:55432', 'ECONNREFUSED'), true],
    ['a dropped connection', new Error('Connection terminated unexpectedly'), true],
    ['a server shutting down (SQLSTATE 57P01)', withCode('terminating connection due to administrator command', '57P01'), true],
    ['a serialization failure (SQLSTATE 40001)', withCode('could not serialize access', '40001'), true],
    ['a broker error', Object.assign(new Error('Connection timeout'), { name: 'KafkaJSConnectionError' }), true],
    ['both addresses of localhost refused', new AggregateError([withCode('refused', 'ECONNREFUSED')], ''), true],
    ['a data exception (SQLSTATE 22P02)', withCode('invalid input syntax for type uuid: "nope"', '22P02'), false],
    ['a TypeORM QueryFailedError around a data exception', Object.assign(new Error('invalid input'), { name: 'QueryFailedError', driverError: { code: '22P02' } }), false],
    ['a programming error while reading the message', new TypeError("Cannot read properties of undefined (reading 'name')"), false],
    ['a thrown string', 'boom', false],
  ])('tells %s apart', (_, error, transient) => {
    expect(isTransient(error)).toBe(transient);
  });

  it('dead-letters a fault of the message at once, naming the SQLSTATE', async () => {
    let calls = 0;
    const reason = await handleOrReason(() => {
      calls++;
      throw withCode('invalid input syntax for type uuid: "nope"', '22P02');
    }, noWait);
    expect(calls).toBe(1);
    expect(reason).toBe('handler failed: invalid input syntax for type uuid: "nope" (22P02)');
  });

  it('passes on the reason a handler returns, and none once handled', async () => {
    expect(await handleOrReason(() => 'QUERY is not expected here', noWait)).toBe('QUERY is not expected here');
    expect(await handleOrReason(async () => undefined, noWait)).toBeUndefined();
  });

  it('retries an outage with doubling backoff and succeeds once it passes', async () => {
    const waits: number[] = [];
    const retried: number[] = [];
    let calls = 0;
    const reason = await handleOrReason(
      async () => {
        if (++calls < 3) throw withCode('connect ECONNREFUSED', 'ECONNREFUSED');
        return undefined;
      },
      { ...noWait, sleep: async (ms) => void waits.push(ms), onRetry: (attempt) => retried.push(attempt) },
    );
    expect(reason).toBeUndefined();
    expect(calls).toBe(3);
    expect(waits).toEqual([100, 200]);
    expect(retried).toEqual([1, 2]);
  });

  it('gives up after the bounded number of attempts, saying so', async () => {
    let calls = 0;
    const reason = await handleOrReason(
      () => {
        calls++;
        throw new Error('Connection terminated unexpectedly');
      },
      { ...noWait, sleep: async () => undefined },
    );
    expect(calls).toBe(4);
    expect(reason).toBe(`gave up after 4 attempts: ${describeFailure(new Error('Connection terminated unexpectedly'))}`);
  });
});
