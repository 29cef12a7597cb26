/**
 * The Paxos Commit participant driver without Kafka or Postgres: the vote is durable with the
 * prepared work before its phase 2a leaves for every acceptor, an outcome is applied once and
 * acknowledged every time it is heard, and phase 2b from a majority decides by itself.
 */
import { describe, expect, it } from 'vitest';
import { BALLOT_ZERO, Membership } from '../protocols/paxos-commit/messages';
import { ManualClock } from '../runtime/manual-clock';
import { PaxosCommitOutbound, PaxosCommitParticipantDriver, paxosCommitOrderOf } from './paxos-commit.driver';
import { InMemoryParticipantLog } from './participant-log.fake';
import { PaxosLogRow } from './paxos-commit-log.repository';
import { ParticipantHandlers } from './participant-sdk.types';

const membership: Membership = { rms: ['rm-a', 'rm-b'], acceptors: ['c1', 'c2', 'c3'] };

const recordingLog = (events: string[]) =>
  new InMemoryParticipantLog<PaxosLogRow, string>(events, {
    fresh: (txnId) => ({ txnId, rmState: 'working', membership: null, leader: null, payload: null, reason: null, traceContext: null }),
    inDoubt: (rows) => rows.filter((row) => row.rmState === 'prepared').map((row) => row.txnId),
  });

function setup(handlers: Partial<ParticipantHandlers> = {}) {
  const events: string[] = [];
  const sent: PaxosCommitOutbound[] = [];
  const log = recordingLog(events);
  const record = (name: string) => async () => {
    events.push(`handler ${name}`);
  };
  const clock = new ManualClock();
  const driver = new PaxosCommitParticipantDriver({
    name: 'rm-a',
    log,
    clock,
    queryIntervalMs: 60_000,
    topics: { acceptor: (id) => `t.acceptor.${id}`, coordinator: 't.coordinator' },
    logger: { info: () => undefined, warn: (m) => events.push(`warn ${m}`), error: (m) => events.push(`error ${m}`) },
    publish: async (messages) => {
      for (const m of messages) events.push(`send ${m.envelope.type} ${m.topic}`);
      sent.push(...messages);
    },
    handlers: {
      prepare: async () => {
        events.push('handler prepare');
        return { vote: 'YES' };
      },
      commit: record('commit'),
      abort: record('abort'),
      ...handlers,
    },
  });
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await driver.idle();
  };
  return { driver, events, sent, log, clock, advance };
}

const prepare = { type: 'PREPARE' as const, txnId: 't1', payload: { x: 1 }, timeoutMs: 60_000, membership, leader: 'c1' };

describe('Paxos Commit participant driver', () => {
  it('commits the prepared work and the vote before the phase 2a leaves for every acceptor', async () => {
    const { driver, events, sent, log } = setup();
    await driver.deliver(prepare);
    expect(events.filter((e) => !e.startsWith('sql'))).toEqual([
      'begin',
      'handler prepare',
      'update prepared',
      'commit',
      'send PHASE2A t.acceptor.c1',
      'send PHASE2A t.acceptor.c2',
      'send PHASE2A t.acceptor.c3',
    ]);
    expect(sent[0].envelope).toMatchObject({ protocol: 'paxos-commit', from: 'rm-a', body: { ballot: BALLOT_ZERO, leader: 'c1', membership, entries: [{ rm: 'rm-a', value: 'Prepared' }] } });
    expect(log.rows.get('t1')).toMatchObject({ rmState: 'prepared', membership, leader: 'c1', payload: { x: 1 } });
    await driver.stop();
  });

  it('votes Aborted with the reason, and never runs abort for work it rolled back', async () => {
    const { driver, events, sent } = setup({ prepare: async () => ({ vote: 'NO', reason: 'out of stock' }) });
    await driver.deliver(prepare);
    expect(sent.map((m) => m.envelope.type)).toEqual(['PHASE2A', 'PHASE2A', 'PHASE2A']);
    expect(sent[0].envelope.body).toMatchObject({ entries: [{ rm: 'rm-a', value: 'Aborted', reason: 'out of stock' }] });
    await driver.deliver({ type: 'ABORT', txnId: 't1' });
    expect(events).not.toContain('handler abort');
    expect(sent.at(-1)).toMatchObject({ topic: 't.coordinator', envelope: { type: 'ACK', body: { outcome: 'ABORT' } } });
    await driver.stop();
  });

  it('applies COMMIT once and acknowledges every copy of it', async () => {
    const { driver, events, sent } = setup();
    await driver.deliver(prepare);
    await driver.deliver({ type: 'COMMIT', txnId: 't1' });
    await driver.deliver({ type: 'COMMIT', txnId: 't1' });
    expect(events.filter((e) => e === 'handler commit')).toHaveLength(1);
    expect(sent.filter((m) => m.envelope.type === 'ACK').map((m) => m.topic)).toEqual(['t.coordinator', 't.coordinator']);
    await driver.stop();
  });

  it('learns the outcome from phase 2b of a majority of acceptors, without the leader', async () => {
    const { driver, events, log } = setup();
    await driver.deliver(prepare);
    const entries = [{ rm: 'rm-a', value: 'Prepared' as const }, { rm: 'rm-b', value: 'Prepared' as const }];
    const phase2b = (acceptor: string) => ({ type: 'PHASE2B' as const, txnId: 't1', message: { type: 'phase2b' as const, txnId: 't1', acceptor, ballot: BALLOT_ZERO, entries } });
    await driver.deliver(phase2b('c2'));
    expect(log.rows.get('t1')?.rmState).toBe('prepared');
    await driver.deliver(phase2b('c3'));
    expect(log.rows.get('t1')?.rmState).toBe('committed');
    expect(events).toContain('handler commit');
    await driver.stop();
  });

  it('retries a vote whose log write failed and sends its phase 2a only once it is durable', async () => {
    const { driver, events, sent, log, advance } = setup();
    log.failWrites(1);
    await driver.deliver(prepare);
    expect(sent).toEqual([]);
    expect(events).toContainEqual(expect.stringMatching(/t1: prepare failed \(attempt 1\)/));
    await advance(10_000);
    expect(sent.map((m) => m.topic)).toEqual(['t.acceptor.c1', 't.acceptor.c2', 't.acceptor.c3']);
    expect(log.rows.get('t1')?.rmState).toBe('prepared');
    await advance(10_000);
    await driver.stop();
    expect(sent).toHaveLength(3);
  });

  it('asks every acceptor while in doubt, and stops asking once the outcome is applied', async () => {
    const { driver, sent, clock, advance } = setup();
    await driver.deliver(prepare);
    await advance(120_000);
    expect(sent.filter((m) => m.envelope.type === 'QUERY').map((m) => m.topic)).toEqual(['t.acceptor.c1', 't.acceptor.c2', 't.acceptor.c3']);
    await driver.deliver({ type: 'COMMIT', txnId: 't1' });
    expect(clock.armed()).toBe(0);
    await driver.stop();
  });

  it('never commits on an outcome it did not vote for', async () => {
    const { driver, events, sent } = setup();
    await driver.deliver({ type: 'COMMIT', txnId: 't2' });
    expect(events).not.toContain('handler commit');
    expect(sent).toEqual([]);
    await driver.stop();
  });

  it('reads a paxos-commit PREPARE only with its membership and leader', () => {
    const base = { v: 1 as const, txnId: 't1', protocol: 'paxos-commit' as const, from: 'c1', epoch: 0, sentAt: new Date().toISOString() };
    expect(paxosCommitOrderOf({ ...base, type: 'PREPARE', body: { payload: null, timeoutMs: 10 } }, undefined)).toMatch(/membership/);
    expect(paxosCommitOrderOf({ ...base, type: 'PREPARE', body: { payload: null, timeoutMs: 10, membership, leader: 'c1' } }, 'tp')).toMatchObject({ type: 'PREPARE', leader: 'c1', traceparent: 'tp' });
    expect(paxosCommitOrderOf({ ...base, type: 'VOTE', body: { vote: 'YES' } }, undefined)).toMatch(/not expected/);
  });
});
