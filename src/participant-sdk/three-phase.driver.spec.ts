/**
 * The 3PC participant driver without Kafka or Postgres: each step's log change and handler
 * work commit before any of its messages leave, stale owners are ignored, and the timeouts
 * lead into the termination protocol only as far as the failure detector allows.
 */
import { describe, expect, it } from 'vitest';
import { TM } from '../protocols/three-phase/messages';
import { InMemoryParticipantLog } from './participant-log.fake';
import { PeerDetector } from './peer-detector';
import { ParticipantHandlers } from './participant-sdk.types';
import { InboundStep } from './three-phase-messages';
import { ThreePhaseRow } from './three-phase-log.repository';
import { ThreePhaseParticipantDriver, ThreePhaseSendable } from './three-phase.driver';

const recordingLog = (events: string[]) =>
  new InMemoryParticipantLog<ThreePhaseRow, ThreePhaseRow>(events, {
    fresh: (txnId) => ({ txnId, rmState: 'working', epoch: 0, recoveryEpoch: null, participants: null, payload: null, reason: null, traceContext: null }),
    inDoubt: (rows) => rows.filter((row) => row.rmState === 'prepared' || row.rmState === 'precommitted'),
  });

class FakeDetector implements PeerDetector {
  readonly crashed = new Set<string>();
  instanceOf(): string | undefined {
    return 'i1';
  }
  suspects(peer: string): boolean {
    return this.crashed.has(peer);
  }
}

const RMS = ['rm-a', 'rm-b', 'rm-c'];

function setup(name = 'rm-a', handlers: Partial<ParticipantHandlers> = {}) {
  const events: string[] = [];
  const sent: ThreePhaseSendable[] = [];
  const log = recordingLog(events);
  const detector = new FakeDetector();
  let notify: (() => void) | undefined;
  const driver = new ThreePhaseParticipantDriver({
    name,
    log,
    detector,
    queryIntervalMs: 20,
    collectTimeoutMs: 20,
    terminationGraceMs: 10,
    defaultParticipantTtlMs: 50,
    logger: { info: () => undefined, warn: () => undefined, error: (m) => events.push(`error ${m}`) },
    send: async (messages) => {
      for (const m of messages) events.push(`send ${m.type} to ${m.to}`);
      sent.push(...messages);
      notify?.();
    },
    handlers: {
      prepare: async () => {
        events.push('handler prepare');
        return { vote: 'YES' };
      },
      preCommit: async () => void events.push('handler preCommit'),
      commit: async () => void events.push('handler commit'),
      abort: async () => void events.push('handler abort'),
      ...handlers,
    },
  });
  /** Resolves once a message matching `predicate` has been sent. */
  const sentOne = (predicate: (m: ThreePhaseSendable) => boolean): Promise<ThreePhaseSendable> =>
    new Promise((resolve) => {
      const check = () => {
        const found = sent.find(predicate);
        if (found) resolve(found);
      };
      notify = check;
      check();
    });
  return { events, sent, log, detector, driver, sentOne };
}

const prepare = (timeoutMs = 1000, epoch = 1): InboundStep => ({
  input: { type: 'canCommit', rms: RMS },
  ownerEpoch: epoch,
  payload: { n: 1 },
  senderBoundMs: timeoutMs,
  participantTtlMs: 50,
});
const noSql = (events: string[]) => events.filter((e) => !e.startsWith('sql'));

describe('3pc participant driver', () => {
  it('logs each state with the handler work before the message that reveals it', async () => {
    const { events, sent, driver, log } = setup();
    await driver.deliver(prepare(), 't1');
    await driver.deliver({ input: { type: 'preCommit', epoch: { round: 0, rm: '' }, from: TM }, ownerEpoch: 1, senderBoundMs: 1000 }, 't1');
    await driver.deliver({ input: { type: 'decision', decision: 'COMMIT', from: TM }, ownerEpoch: 1 }, 't1');
    await driver.stop();
    expect(noSql(events)).toEqual([
      'begin', 'handler prepare', 'update prepared', 'commit', 'send VOTE to tm',
      'begin', 'handler preCommit', 'update precommitted', 'commit', 'send PRECOMMIT_ACK to tm',
      'begin', 'update committed', 'handler commit', 'commit', 'send ACK to tm',
    ]);
    expect(sent.map((m) => [m.type, m.body])).toEqual([
      ['VOTE', { vote: 'YES' }],
      ['PRECOMMIT_ACK', { recoveryEpoch: { round: 0, rm: '' } }],
      ['ACK', { outcome: 'COMMIT' }],
    ]);
    expect(log.rows.get('t1')).toMatchObject({ rmState: 'committed', epoch: 1, participants: RMS, payload: { n: 1 } });
  });

  it('votes NO with the handler reason and leaves no work behind', async () => {
    const { events, sent, driver, log } = setup('rm-a', { prepare: async () => ({ vote: 'NO', reason: 'out of stock' }) });
    await driver.deliver(prepare(), 't2');
    await driver.stop();
    expect(noSql(events)).toEqual(['begin', 'update aborted', 'commit', 'send VOTE to tm']);
    expect(sent[0].body).toEqual({ vote: 'NO', reason: 'out of stock' });
    expect(log.rows.get('t2')?.reason).toBe('out of stock');
  });

  it('ignores an order from an older owner epoch but still hears its peers', async () => {
    const { sent, driver } = setup();
    await driver.deliver(prepare(1000, 3), 't3');
    await driver.deliver({ input: { type: 'decision', decision: 'ABORT', from: TM }, ownerEpoch: 2 }, 't3');
    expect(sent.map((m) => m.type)).toEqual(['VOTE']);
    await driver.deliver({ input: { type: 'decision', decision: 'ABORT', from: 'rm-b' } }, 't3');
    await driver.stop();
    expect(sent.map((m) => `${m.type} to ${m.to}`)).toEqual(['VOTE to tm', 'ACK to rm-b']);
  });

  it('when the coordinator stays silent past its promise, the first participant runs the termination protocol', async () => {
    const { driver, sentOne, sent, events } = setup('rm-a');
    await driver.deliver(prepare(20), 't4');
    await sentOne((m) => m.type === 'STATE_REQ' && m.to === 'rm-c');
    expect(sent.filter((m) => m.type === 'STATE_REQ').map((m) => m.to)).toEqual(['rm-b', 'rm-c']);
    const report = (rm: string): InboundStep => ({ input: { type: 'stateReport', rm, epoch: { round: 1, rm: 'rm-a' }, state: 'uncertain' } });
    await driver.deliver(report('rm-b'), 't4');
    await driver.deliver(report('rm-c'), 't4');
    await driver.stop();
    // Everyone uncertain: nobody can have committed, so abort, and tell the others only once it is durable.
    expect(noSql(events).slice(-6)).toEqual(['begin', 'update aborted', 'handler abort', 'commit', 'send ABORT to rm-b', 'send ABORT to rm-c']);
  });

  it('waits for a silent peer until the detector says it crashed, then decides without it', async () => {
    const { driver, sentOne, detector } = setup('rm-a');
    await driver.deliver(prepare(20), 't5');
    await driver.deliver({ input: { type: 'preCommit', epoch: { round: 0, rm: '' }, from: TM }, ownerEpoch: 1, senderBoundMs: 20 }, 't5');
    await sentOne((m) => m.type === 'STATE_REQ' && m.to === 'rm-c');
    await driver.deliver({ input: { type: 'stateReport', rm: 'rm-b', epoch: { round: 1, rm: 'rm-a' }, state: 'precommitted' } }, 't5');
    // rm-c says nothing; only once the detector reports it crashed may rm-a conclude.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const early = await Promise.race([sentOne((m) => m.type === 'COMMIT').then(() => 'decided'), Promise.resolve('waiting')]);
    expect(early).toBe('waiting');
    detector.crashed.add('rm-c');
    const commit = await sentOne((m) => m.type === 'COMMIT');
    await driver.stop();
    expect(commit).toMatchObject({ to: 'rm-b', body: { role: 'participant' } });
  });

  it('a participant restarted in doubt asks the coordinator and every peer', async () => {
    const first = setup('rm-b');
    await first.driver.deliver(prepare(), 't6');
    await first.driver.stop();
    const events: string[] = [];
    const sent: ThreePhaseSendable[] = [];
    const restarted = new ThreePhaseParticipantDriver({
      name: 'rm-b',
      log: first.log,
      detector: new FakeDetector(),
      queryIntervalMs: 1000,
      collectTimeoutMs: 20,
      terminationGraceMs: 10,
      defaultParticipantTtlMs: 50,
      logger: { info: () => undefined, warn: () => undefined, error: (m) => events.push(m) },
      send: async (messages) => void sent.push(...messages),
      handlers: { prepare: async () => ({ vote: 'YES' }), commit: async () => undefined, abort: async () => undefined },
    });
    expect(await restarted.recover()).toBe(1);
    await restarted.stop();
    expect(sent.map((m) => `${m.type} to ${m.to}`).sort()).toEqual(['DECISION_REQ to rm-a', 'DECISION_REQ to rm-c', 'DECISION_REQ to tm']);
  });
});
