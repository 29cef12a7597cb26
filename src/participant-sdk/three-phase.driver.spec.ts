/**
 * The 3PC participant driver without Kafka or Postgres: each step's log change and handler
 * work commit before any of its messages leave, stale owners are ignored, the timeouts lead
 * into the termination protocol only as far as the failure detector allows, and a failed
 * step or send is tried again until it goes through. Time moves only when a case says so.
 */
import { describe, expect, it } from 'vitest';
import { TM } from '../protocols/three-phase/messages';
import { ManualClock } from '../runtime/manual-clock';
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
  const clock = new ManualClock();
  let sendFailures = 0;
  const driver = new ThreePhaseParticipantDriver({
    name,
    log,
    detector,
    clock,
    queryIntervalMs: 20,
    collectTimeoutMs: 20,
    terminationGraceMs: 10,
    defaultParticipantTtlMs: 50,
    logger: { info: () => undefined, warn: (m) => events.push(`warn ${m}`), error: (m) => events.push(`error ${m}`) },
    send: async (messages) => {
      if (sendFailures > 0) {
        sendFailures--;
        events.push('send failed');
        throw new Error('broker unavailable');
      }
      for (const m of messages) events.push(`send ${m.type} to ${m.to}`);
      sent.push(...messages);
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
  /** Moves time on and waits for every step the timers started. */
  const advance = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await driver.idle();
  };
  /** Moves time on in small steps until a message matching `predicate` was sent, for at most `limitMs`. */
  const advanceUntilSent = async (predicate: (m: ThreePhaseSendable) => boolean, limitMs = 10_000): Promise<ThreePhaseSendable> => {
    for (let waited = 0; !sent.some(predicate); waited += 10) {
      if (waited >= limitMs) throw new Error(`nothing matching was sent within ${limitMs} ms`);
      await advance(10);
    }
    return sent.find(predicate)!;
  };
  return { events, sent, log, detector, driver, clock, advance, advanceUntilSent, failSends: (n: number) => (sendFailures = n) };
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
    const { driver, sent, events, advance } = setup('rm-a');
    await driver.deliver(prepare(20), 't4');
    // The coordinator promised 20 ms; with the 10 ms grace it is suspected at 30 ms, not before.
    await advance(29);
    expect(sent.map((m) => m.type)).toEqual(['VOTE']);
    await advance(1);
    expect(sent.filter((m) => m.type === 'STATE_REQ').map((m) => m.to)).toEqual(['rm-b', 'rm-c']);
    const report = (rm: string): InboundStep => ({ input: { type: 'stateReport', rm, epoch: { round: 1, rm: 'rm-a' }, state: 'uncertain' } });
    await driver.deliver(report('rm-b'), 't4');
    await driver.deliver(report('rm-c'), 't4');
    await driver.stop();
    // Everyone uncertain: nobody can have committed, so abort, and tell the others only once it is durable.
    expect(noSql(events).slice(-6)).toEqual(['begin', 'update aborted', 'handler abort', 'commit', 'send ABORT to rm-b', 'send ABORT to rm-c']);
  });

  it('waits for a silent peer until the detector says it crashed, then decides without it', async () => {
    const { driver, detector, sent, clock, advance, advanceUntilSent } = setup('rm-a');
    await driver.deliver(prepare(20), 't5');
    await driver.deliver({ input: { type: 'preCommit', epoch: { round: 0, rm: '' }, from: TM }, ownerEpoch: 1, senderBoundMs: 20 }, 't5');
    await advanceUntilSent((m) => m.type === 'STATE_REQ' && m.to === 'rm-c');
    await driver.deliver({ input: { type: 'stateReport', rm: 'rm-b', epoch: { round: 1, rm: 'rm-a' }, state: 'precommitted' } }, 't5');
    // rm-c says nothing; only once the detector reports it crashed may rm-a conclude.
    await advance(5000);
    expect(sent.some((m) => m.type === 'COMMIT')).toBe(false);
    expect(clock.armed()).toBeGreaterThan(0);
    detector.crashed.add('rm-c');
    const commit = await advanceUntilSent((m) => m.type === 'COMMIT');
    await driver.stop();
    expect(commit).toMatchObject({ to: 'rm-b', body: { role: 'participant' } });
  });

  it('retries a PREPARE whose log write failed, and votes once it is durable, exactly once', async () => {
    const { driver, events, sent, log, advance } = setup('rm-a');
    log.failWrites(1);
    await driver.deliver(prepare(), 't7');
    expect(sent).toEqual([]);
    expect(noSql(events)).toEqual(['begin', 'handler prepare', 'update failed', 'rollback', expect.stringMatching(/t7: canCommit failed \(attempt 1\)/)]);
    expect(log.rows.has('t7')).toBe(false);
    await advance(100);
    expect(sent.map((m) => `${m.type} to ${m.to}`)).toEqual(['VOTE to tm']);
    expect(log.rows.get('t7')?.rmState).toBe('prepared');
    await advance(100);
    await driver.stop();
    expect(sent.filter((m) => m.type === 'VOTE')).toHaveLength(1);
  });

  it('retries a decision whose handler failed until it acknowledges, and then holds nothing for the transaction', async () => {
    let failures = 1;
    const { driver, sent, log, clock, advance } = setup('rm-a', {
      commit: async () => {
        if (failures-- > 0) throw new Error('disk full');
      },
    });
    await driver.deliver(prepare(), 't8');
    await driver.deliver({ input: { type: 'preCommit', epoch: { round: 0, rm: '' }, from: TM }, ownerEpoch: 1, senderBoundMs: 1000 }, 't8');
    await driver.deliver({ input: { type: 'decision', decision: 'COMMIT', from: TM }, ownerEpoch: 1 }, 't8');
    expect(log.rows.get('t8')?.rmState).toBe('precommitted');
    expect(sent.map((m) => m.type)).toEqual(['VOTE', 'PRECOMMIT_ACK']);
    await advance(100);
    expect(log.rows.get('t8')?.rmState).toBe('committed');
    expect(sent.map((m) => m.type)).toEqual(['VOTE', 'PRECOMMIT_ACK', 'ACK']);
    // Decided: no termination timer, query or retry is left for it.
    expect(clock.armed()).toBe(0);
    await driver.stop();
  });

  it('sends a reply again until the broker takes it', async () => {
    const { driver, sent, failSends, advance } = setup('rm-a');
    failSends(1);
    await driver.deliver(prepare(), 't9');
    expect(sent).toEqual([]);
    await advance(100);
    await driver.stop();
    expect(sent.map((m) => m.type)).toEqual(['VOTE']);
  });

  it('runs nothing more after stop: no timer, no retry, no new message', async () => {
    const { driver, events, sent, log, clock } = setup('rm-a');
    await driver.deliver(prepare(20), 't10');
    log.failWrites(1);
    await driver.deliver(prepare(20), 't11');
    await driver.stop();
    events.length = 0;
    clock.advance(60_000);
    await driver.deliver(prepare(20), 't12');
    await driver.idle();
    expect(events).toEqual([]);
    expect(sent.map((m) => m.type)).toEqual(['VOTE']);
    expect(clock.armed()).toBe(0);
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
      clock: new ManualClock(),
      queryIntervalMs: 1000,
      collectTimeoutMs: 20,
      terminationGraceMs: 10,
      defaultParticipantTtlMs: 50,
      logger: { info: () => undefined, warn: () => undefined, error: (m) => events.push(m) },
      send: async (messages) => void sent.push(...messages),
      handlers: { prepare: async () => ({ vote: 'YES' }), commit: async () => undefined, abort: async () => undefined },
    });
    expect(await restarted.recover()).toBe(1);
    await restarted.idle();
    await restarted.stop();
    expect(sent.map((m) => `${m.type} to ${m.to}`).sort()).toEqual(['DECISION_REQ to rm-a', 'DECISION_REQ to rm-c', 'DECISION_REQ to tm']);
  });
});
