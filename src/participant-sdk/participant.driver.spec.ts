/**
 * The driver's durability rule and failure policy without Kafka or Postgres: a step's log
 * change and handler work commit before any of its messages leave, a failed step sends
 * nothing and is tried again by itself, and a failed send is repeated until it goes out.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../runtime/manual-clock';
import { ParticipantDriver, ParticipantReply } from './participant.driver';
import { InMemoryParticipantLog } from './participant-log.fake';
import { LogRow } from './participant-log.repository';
import { ParticipantHandlers } from './participant-sdk.types';

const recordingLog = (events: string[]) =>
  new InMemoryParticipantLog<LogRow, string>(events, {
    fresh: (txnId) => ({ txnId, rmState: 'working', epoch: 0, payload: null, reason: null, traceContext: null }),
    inDoubt: (rows) => rows.filter((row) => row.rmState === 'prepared').map((row) => row.txnId),
  });

/** Longer than any retry backoff of the runtime's default policy. */
const RETRY_MS = 10_000;

function setup(handlers: Partial<ParticipantHandlers> = {}) {
  const events: string[] = [];
  const sent: ParticipantReply[] = [];
  const log = recordingLog(events);
  const clock = new ManualClock();
  let sendFailures = 0;
  const driver = new ParticipantDriver({
    name: 'rm-a',
    log,
    clock,
    queryIntervalMs: 60_000,
    logger: { info: () => undefined, warn: (m) => events.push(`warn ${m}`), error: (m) => events.push(`error ${m}`) },
    publish: async (replies) => {
      if (sendFailures > 0) {
        sendFailures--;
        events.push('send failed');
        throw new Error('broker unavailable');
      }
      for (const reply of replies) events.push(`send ${reply.type}`);
      sent.push(...replies);
    },
    handlers: {
      prepare: async () => {
        events.push('handler prepare');
        return { vote: 'YES' };
      },
      commit: async () => void events.push('handler commit'),
      abort: async () => void events.push('handler abort'),
      ...handlers,
    },
  });
  /** Moves time on and waits for every step the timers started. */
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await driver.idle();
  };
  return { events, sent, log, driver, clock, advance, failSends: (n: number) => (sendFailures = n) };
}

const noSql = (events: string[]) => events.filter((e) => !e.startsWith('sql'));
const prepare = (txnId: string, epoch = 1) => ({ type: 'PREPARE' as const, txnId, epoch, payload: { a: 1 }, timeoutMs: 1000 });

describe('participant driver', () => {
  it('commits the prepared row and the handler work before the YES vote leaves', async () => {
    const { events, sent, driver } = setup();
    await driver.deliver(prepare('t1', 4));
    await driver.stop();
    expect(noSql(events)).toEqual(['begin', 'handler prepare', 'update prepared', 'commit', 'send VOTE']);
    expect(sent).toEqual([{ type: 'VOTE', txnId: 't1', epoch: 4, body: { vote: 'YES' } }]);
  });

  it('rolls back a decision whose handler failed, sends nothing, and retries it by itself until it acknowledges', async () => {
    let failures = 2;
    const { events, sent, driver, log, advance } = setup({
      commit: async () => {
        if (failures-- > 0) throw new Error('disk full');
        events.push('handler commit');
      },
    });
    await driver.deliver(prepare('t2'));
    events.length = 0;
    await driver.deliver({ type: 'COMMIT', txnId: 't2', epoch: 1 });
    expect(noSql(events)).toEqual(['begin', 'update committed', 'rollback', expect.stringMatching(/t2: commit failed \(attempt 1\).*disk full/)]);
    expect(log.rows.get('t2')?.rmState).toBe('prepared');
    events.length = 0;
    await advance(RETRY_MS);
    await advance(RETRY_MS);
    await driver.stop();
    expect(noSql(events)).toEqual([
      'begin', 'update committed', 'rollback', expect.stringMatching(/commit failed \(attempt 2\)/),
      'begin', 'update committed', 'handler commit', 'commit', 'send ACK',
    ]);
    expect(sent.filter((r) => r.type === 'ACK')).toEqual([expect.objectContaining({ body: { outcome: 'COMMIT' } })]);
    expect(log.rows.get('t2')?.rmState).toBe('committed');
  });

  it('retries a PREPARE whose log write failed, and sends nothing until it votes, exactly once', async () => {
    const { events, sent, driver, log, advance } = setup();
    log.failWrites(1);
    await driver.deliver(prepare('t3'));
    expect(noSql(events)).toEqual(['begin', 'handler prepare', 'update failed', 'rollback', expect.stringMatching(/t3: prepare failed \(attempt 1\)/)]);
    expect(sent).toEqual([]);
    expect(log.rows.has('t3')).toBe(false);
    events.length = 0;
    await advance(RETRY_MS);
    await advance(RETRY_MS);
    await driver.stop();
    expect(noSql(events)).toEqual(['begin', 'handler prepare', 'update prepared', 'commit', 'send VOTE']);
    expect(sent).toEqual([expect.objectContaining({ type: 'VOTE', txnId: 't3', body: { vote: 'YES' } })]);
  });

  it('keeps a NO vote from the handler a vote, not a failure to retry', async () => {
    const { events, sent, driver, clock } = setup({ prepare: async () => ({ vote: 'NO', reason: 'out of stock' }) });
    await driver.deliver(prepare('t4'));
    expect(sent).toEqual([expect.objectContaining({ type: 'VOTE', body: { vote: 'NO', reason: 'out of stock' } })]);
    expect(events.some((e) => e.startsWith('warn'))).toBe(false);
    expect(clock.armed()).toBe(0);
    await driver.stop();
  });

  it('votes NO when the prepare handler throws its own error, and retries when the database failed under it', async () => {
    const refused = setup({ prepare: async () => Promise.reject(new Error('card declined')) });
    await refused.driver.deliver(prepare('t11'));
    await refused.driver.stop();
    expect(refused.sent).toEqual([expect.objectContaining({ type: 'VOTE', body: { vote: 'NO', reason: 'card declined' } })]);

    let deadlocks = 1;
    const { events, sent, driver, advance } = setup({
      prepare: async () => {
        if (deadlocks-- > 0) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
        return { vote: 'YES' };
      },
    });
    await driver.deliver(prepare('t12'));
    expect(sent).toEqual([]);
    expect(noSql(events)).toEqual(['begin', 'rollback', expect.stringMatching(/prepare failed \(attempt 1\).*deadlock detected/)]);
    await advance(RETRY_MS);
    await driver.stop();
    expect(sent).toEqual([expect.objectContaining({ type: 'VOTE', body: { vote: 'YES' } })]);
  });

  it('sends a vote again until the broker takes it, without running the step twice', async () => {
    const { events, sent, driver, failSends, advance } = setup();
    failSends(2);
    await driver.deliver(prepare('t5'));
    expect(sent).toEqual([]);
    await advance(RETRY_MS);
    await advance(RETRY_MS);
    await driver.stop();
    expect(noSql(events).filter((e) => !e.startsWith('warn'))).toEqual(['begin', 'handler prepare', 'update prepared', 'commit', 'send failed', 'send failed', 'send VOTE']);
    expect(sent.map((r) => r.type)).toEqual(['VOTE']);
  });

  it('asks the coordinator while in doubt, once the prepare window has passed, until the decision comes', async () => {
    const { sent, driver, clock, advance } = setup();
    await driver.deliver(prepare('t6'));
    await advance(60_999);
    expect(sent.map((r) => r.type)).toEqual(['VOTE']);
    await advance(1);
    expect(sent.map((r) => r.type)).toEqual(['VOTE', 'QUERY']);
    await advance(60_000);
    expect(sent.map((r) => r.type)).toEqual(['VOTE', 'QUERY', 'QUERY']);
    await driver.deliver({ type: 'ABORT', txnId: 't6', epoch: 1 });
    expect(clock.armed()).toBe(0);
    await advance(600_000);
    await driver.stop();
    expect(sent.map((r) => r.type)).toEqual(['VOTE', 'QUERY', 'QUERY', 'ACK']);
  });

  it('runs nothing more after stop: no retry, no query, no new order', async () => {
    const { events, sent, driver, log, clock } = setup();
    await driver.deliver(prepare('t7'));
    log.failWrites(1);
    await driver.deliver(prepare('t8'));
    await driver.stop();
    events.length = 0;
    clock.advance(600_000);
    await driver.deliver(prepare('t9'));
    await driver.idle();
    expect(events).toEqual([]);
    expect(sent.map((r) => `${r.type} ${r.txnId}`)).toEqual(['VOTE t7']);
    expect(clock.armed()).toBe(0);
  });

  it('ignores an order from an epoch lower than one already logged', async () => {
    const { sent, driver } = setup();
    await driver.deliver(prepare('t10', 5));
    await driver.deliver({ type: 'ABORT', txnId: 't10', epoch: 4 });
    await driver.stop();
    expect(sent.map((r) => r.type)).toEqual(['VOTE']);
  });
});
