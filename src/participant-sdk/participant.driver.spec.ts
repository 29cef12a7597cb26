/**
 * The driver's durability rule without Kafka or Postgres: a step's log change and handler
 * work commit before any of its messages leave, and a failed step sends nothing.
 */
import { describe, expect, it } from 'vitest';
import { ParticipantDriver, ParticipantReply } from './participant.driver';
import { InMemoryParticipantLog } from './participant-log.fake';
import { LogRow } from './participant-log.repository';
import { ParticipantHandlers } from './participant-sdk.types';

const recordingLog = (events: string[]) =>
  new InMemoryParticipantLog<LogRow, string>(events, {
    fresh: (txnId) => ({ txnId, rmState: 'working', epoch: 0, payload: null, reason: null, traceContext: null }),
    inDoubt: (rows) => rows.filter((row) => row.rmState === 'prepared').map((row) => row.txnId),
  });

function setup(handlers: Partial<ParticipantHandlers> = {}) {
  const events: string[] = [];
  const sent: ParticipantReply[] = [];
  const log = recordingLog(events);
  const driver = new ParticipantDriver({
    name: 'rm-a',
    log,
    queryIntervalMs: 60_000,
    logger: { info: () => undefined, warn: () => undefined, error: (m) => events.push(`error ${m}`) },
    publish: async (replies) => {
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
  return { events, sent, log, driver };
}

describe('participant driver', () => {
  it('commits the prepared row and the handler work before the YES vote leaves', async () => {
    const { events, sent, driver } = setup();
    await driver.deliver({ type: 'PREPARE', txnId: 't1', epoch: 4, payload: { a: 1 }, timeoutMs: 1000 });
    await driver.stop();
    expect(events.filter((e) => !e.startsWith('sql'))).toEqual(['begin', 'handler prepare', 'update prepared', 'commit', 'send VOTE']);
    expect(sent).toEqual([{ type: 'VOTE', txnId: 't1', epoch: 4, body: { vote: 'YES' } }]);
  });

  it('commits the decision with the handler work before the ACK, and sends nothing when the handler fails', async () => {
    let failures = 1;
    const { events, sent, driver, log } = setup({
      commit: async () => {
        if (failures-- > 0) throw new Error('disk full');
        events.push('handler commit');
      },
    });
    await driver.deliver({ type: 'PREPARE', txnId: 't2', epoch: 1, payload: null, timeoutMs: 1000 });
    events.length = 0;
    await driver.deliver({ type: 'COMMIT', txnId: 't2', epoch: 1 });
    expect(events.filter((e) => !e.startsWith('sql'))).toEqual(['begin', 'update committed', 'rollback', expect.stringContaining('disk full')]);
    expect(log.rows.get('t2')?.rmState).toBe('prepared');
    events.length = 0;
    await driver.deliver({ type: 'COMMIT', txnId: 't2', epoch: 1 });
    await driver.stop();
    expect(events.filter((e) => !e.startsWith('sql'))).toEqual(['begin', 'update committed', 'handler commit', 'commit', 'send ACK']);
    expect(sent.at(-1)).toMatchObject({ type: 'ACK', body: { outcome: 'COMMIT' } });
  });

  it('ignores an order from an epoch lower than one already logged', async () => {
    const { sent, driver } = setup();
    await driver.deliver({ type: 'PREPARE', txnId: 't3', epoch: 5, payload: null, timeoutMs: 1000 });
    await driver.deliver({ type: 'ABORT', txnId: 't3', epoch: 4 });
    await driver.stop();
    expect(sent.map((r) => r.type)).toEqual(['VOTE']);
  });
});
