/**
 * The participants as production runs them: each is the participant SDK's 2PC driver
 * (src/participant-sdk/participant.driver.ts, on the runtime) over an in-memory participant
 * log that outlives its process (participant-log.fake.ts keeps the SDK log's contract: a row
 * is kept only once its step committed). A crash stops the process's driver and fences its
 * log and producer, so nothing of the old incarnation lands after it; a restart starts a new
 * driver on the same rows, which asks about what it holds prepared, then reads the orders
 * that waited in its topic. With storage faults on, a step's database transaction fails now
 * and then, before or after the handler ran, as a database that went away would.
 */
import { Decision } from '../../../src/protocols/common/effects';
import { InMemoryParticipantLog } from '../../../src/participant-sdk/participant-log.fake';
import { LogRow, ParticipantLog } from '../../../src/participant-sdk/participant-log.repository';
import { CoordinatorOrder, ParticipantDriver, ParticipantReply } from '../../../src/participant-sdk/participant.driver';
import { ParticipantHandlers, ParticipantLogger } from '../../../src/participant-sdk/participant-sdk.types';
import { RmState } from '../../../src/protocols/two-phase/participant';
import { Envelope } from '../../../src/transport/kafka/envelope';
import { Prng } from '../prng';
import { ParticipantHooks, RM_CONFIG } from './sim-participants';

type At = (afterMs: number, fire: () => void) => () => void;

/** How often a participant's database transaction fails while faults are on. */
export interface ParticipantStorageFaults {
  readonly fail: number;
}

class Process {
  up = true;
  incarnation = 0;
  readonly rows: InMemoryParticipantLog<LogRow, string>;
  driver: ParticipantDriver | undefined;
  backlog: Envelope[] = [];

  constructor(readonly name: string) {
    this.rows = new InMemoryParticipantLog<LogRow, string>([], {
      fresh: (txnId) => ({ txnId, rmState: 'working', epoch: 0, payload: null, reason: null, traceContext: null }),
      inDoubt: (rows) => rows.filter((r) => r.rmState === 'prepared').map((r) => r.txnId),
    });
  }
}

export class SdkParticipants {
  private readonly processes = new Map<string, Process>();

  constructor(
    names: readonly string[],
    private readonly rng: Prng,
    private readonly at: At,
    private readonly yesVote: number,
    private readonly hooks: ParticipantHooks,
    private readonly storageFaults: () => ParticipantStorageFaults | undefined,
  ) {
    for (const name of names) {
      const p = new Process(name);
      this.processes.set(name, p);
      p.driver = this.startDriver(p);
    }
  }

  names(): string[] {
    return [...this.processes.keys()];
  }

  isUp(rm: string): boolean {
    return this.processes.get(rm)!.up;
  }

  rmState(rm: string, txnId: string): RmState | undefined {
    return this.processes.get(rm)!.rows.rows.get(txnId)?.rmState;
  }

  receive(rm: string, envelope: Envelope): void {
    const p = this.processes.get(rm);
    if (!p) return;
    if (!p.up) p.backlog.push(envelope);
    else this.deliver(p, envelope);
  }

  crash(rm: string): void {
    const p = this.processes.get(rm)!;
    if (!p.up) return;
    p.up = false;
    p.incarnation++;
    void p.driver?.stop();
    p.driver = undefined;
    this.hooks.log(`participant ${rm} crashes`);
  }

  restart(rm: string): void {
    const p = this.processes.get(rm)!;
    if (p.up) return;
    p.up = true;
    this.hooks.log(`participant ${rm} restarts with ${p.rows.rows.size} row(s)`);
    const driver = this.startDriver(p);
    p.driver = driver;
    const incarnation = p.incarnation;
    void driver.recover().then(() => {
      if (p.incarnation !== incarnation) return;
      for (const envelope of p.backlog.splice(0)) this.deliver(p, envelope);
    }, () => this.at(100, () => p.incarnation === incarnation && this.restartBacklog(p)));
  }

  private restartBacklog(p: Process): void {
    for (const envelope of p.backlog.splice(0)) this.deliver(p, envelope);
  }

  private deliver(p: Process, envelope: Envelope): void {
    const order = orderOf(envelope);
    if (order && p.driver) void p.driver.deliver(order);
  }

  private startDriver(p: Process): ParticipantDriver {
    const incarnation = p.incarnation;
    const alive = (): boolean => p.up && p.incarnation === incarnation;
    return new ParticipantDriver({
      name: p.name,
      handlers: this.handlers(alive),
      log: this.fencedLog(p, alive),
      publish: async (replies) => {
        if (!alive()) throw new Error('the process is gone');
        for (const reply of replies) this.hooks.send(envelopeOf(p.name, reply));
      },
      queryIntervalMs: RM_CONFIG.queryIntervalMs,
      logger: quietLogger(p.name, this.hooks.log),
    });
  }

  /** The service's work: a short delay and a seeded verdict; commit and abort have nothing to undo. */
  private handlers(alive: () => boolean): ParticipantHandlers {
    return {
      prepare: () =>
        new Promise((resolve, reject) => {
          const yes = this.rng.chance(this.yesVote);
          this.at(this.rng.int(1, 20), () => (alive() ? resolve(yes ? { vote: 'YES' } : { vote: 'NO', reason: 'the service refused' }) : reject(new Error('the process is gone'))));
        }),
      commit: async () => undefined,
      abort: async () => undefined,
    };
  }

  /**
   * The log as one incarnation of the process sees it: nothing commits once the process is
   * gone, and with faults on a database transaction fails before or after the step's work.
   */
  private fencedLog(p: Process, alive: () => boolean): ParticipantLog {
    return {
      withLockedRow: async (txnId, work) => {
        if (!alive()) throw new Error('the process is gone');
        if (this.failsNow()) throw new Error('connection terminated unexpectedly');
        const before = p.rows.rows.get(txnId)?.rmState;
        const result = await p.rows.withLockedRow(txnId, async (locked) => {
          const outcome = await work(locked);
          if (!alive()) throw new Error('the process is gone');
          if (this.failsNow()) throw new Error('connection terminated unexpectedly');
          return outcome;
        });
        const after = p.rows.rows.get(txnId)?.rmState;
        if (after !== before && after !== undefined && after !== 'working') this.durable(txnId, p.name, after);
        return result;
      },
      findInDoubt: () => (alive() ? p.rows.findInDoubt() : Promise.reject(new Error('the process is gone'))),
    };
  }

  private failsNow(): boolean {
    const faults = this.storageFaults();
    return faults !== undefined && this.rng.chance(faults.fail);
  }

  private durable(txnId: string, rm: string, state: 'prepared' | 'committed' | 'aborted'): void {
    this.hooks.record(txnId, rm, state);
    const decision: Decision | undefined = state === 'committed' ? 'COMMIT' : state === 'aborted' ? 'ABORT' : undefined;
    if (decision) this.hooks.learn(txnId, rm, decision);
  }
}

function orderOf(envelope: Envelope): CoordinatorOrder | undefined {
  const { txnId, epoch } = envelope;
  if (envelope.type === 'PREPARE') return { type: 'PREPARE', txnId, epoch, payload: envelope.body.payload ?? null, timeoutMs: envelope.body.timeoutMs };
  if (envelope.type === 'COMMIT' || envelope.type === 'ABORT') return { type: envelope.type, txnId, epoch };
  return undefined;
}

function envelopeOf(from: string, reply: ParticipantReply): Envelope {
  return { v: 1, type: reply.type, txnId: reply.txnId, protocol: '2pc', from, epoch: reply.epoch, sentAt: new Date().toISOString(), body: reply.body } as Envelope;
}

function quietLogger(name: string, log: (line: string) => void): ParticipantLogger {
  return { info: () => undefined, warn: (m) => log(`${name} warn ${m}`), error: (m) => log(`${name} error ${m}`) };
}
