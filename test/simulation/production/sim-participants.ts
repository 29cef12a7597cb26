/**
 * The participants, played by the pure 2PC resource-manager core
 * (src/protocols/two-phase/participant.ts) the way the participant SDK drives it: each keeps
 * a durable row per transaction (rmState and the highest coordinator epoch it accepted),
 * ignores orders from a lower epoch once it has a row, makes a record durable before the
 * messages of its step leave, and after a restart rebuilds its state from the rows alone
 * (restoreRm of the core simulator) and asks about whatever it holds prepared. The service's
 * own prepare work is a short random delay and a seeded yes/no. Orders that reach a crashed
 * participant wait in its topic and are read, in order, when it restarts.
 */
import { Decision } from '../../../src/protocols/common/effects';
import { ParticipantInput, ParticipantState, RmConfig, RmState, step } from '../../../src/protocols/two-phase/participant';
import { Envelope } from '../../../src/transport/kafka/envelope';
import { Prng } from '../prng';
import { restoreRm } from '../protocols/two-phase.adapter';

export const RM_CONFIG: RmConfig = { queryIntervalMs: 200 };

interface DurableRow {
  rmState: RmState;
  epoch: number;
}

interface Live {
  state: ParticipantState;
  epoch: number;
  timer?: () => void;
}

export interface ParticipantHooks {
  /** `rm` made `kind` durable for `txnId`. */
  record(txnId: string, rm: string, kind: 'prepared' | 'committed' | 'aborted'): void;
  learn(txnId: string, rm: string, decision: Decision): void;
  send(envelope: Envelope): void;
  log(line: string): void;
}

class Participant {
  up = true;
  incarnation = 0;
  readonly durable = new Map<string, DurableRow>();
  live = new Map<string, Live>();
  backlog: Envelope[] = [];

  constructor(readonly name: string) {}
}

type At = (afterMs: number, fire: () => void) => () => void;

export class SimParticipants {
  private readonly rms = new Map<string, Participant>();

  constructor(
    names: readonly string[],
    private readonly rng: Prng,
    private readonly at: At,
    private readonly yesVote: number,
    private readonly hooks: ParticipantHooks,
  ) {
    for (const name of names) this.rms.set(name, new Participant(name));
  }

  names(): string[] {
    return [...this.rms.keys()];
  }

  isUp(rm: string): boolean {
    return this.rms.get(rm)!.up;
  }

  rmState(rm: string, txnId: string): RmState | undefined {
    return this.rms.get(rm)!.durable.get(txnId)?.rmState;
  }

  receive(rm: string, envelope: Envelope): void {
    const p = this.rms.get(rm);
    if (!p) return;
    if (!p.up) p.backlog.push(envelope);
    else this.handle(p, envelope);
  }

  crash(rm: string): void {
    const p = this.rms.get(rm)!;
    if (!p.up) return;
    p.up = false;
    p.incarnation++;
    for (const live of p.live.values()) live.timer?.();
    p.live = new Map();
    this.hooks.log(`participant ${rm} crashes`);
  }

  restart(rm: string): void {
    const p = this.rms.get(rm)!;
    if (p.up) return;
    p.up = true;
    this.hooks.log(`participant ${rm} restarts with ${p.durable.size} row(s)`);
    for (const [txnId, row] of p.durable) {
      p.live.set(txnId, { state: restoreRm(txnId, rm, [{ type: row.rmState as 'prepared' | 'committed' | 'aborted' }]), epoch: row.epoch });
      this.stepWith(p, txnId, { type: 'recover' });
    }
    for (const envelope of p.backlog.splice(0)) if (p.up) this.handle(p, envelope);
  }

  private handle(p: Participant, envelope: Envelope): void {
    const input: ParticipantInput | undefined =
      envelope.type === 'PREPARE' ? { type: 'prepare' } : envelope.type === 'COMMIT' ? { type: 'commit' } : envelope.type === 'ABORT' ? { type: 'abort' } : undefined;
    if (!input) return;
    const live = this.liveOf(p, envelope.txnId);
    if (live.state.rmState !== 'working' && envelope.epoch < live.epoch) {
      this.hooks.log(`${p.name} ${envelope.txnId}: ignores ${envelope.type} from stale epoch ${envelope.epoch} < ${live.epoch}`);
      return;
    }
    live.epoch = Math.max(live.epoch, envelope.epoch);
    const row = p.durable.get(envelope.txnId);
    if (row) row.epoch = live.epoch;
    this.stepWith(p, envelope.txnId, input);
  }

  private liveOf(p: Participant, txnId: string): Live {
    let live = p.live.get(txnId);
    if (!live) {
      const row = p.durable.get(txnId);
      const state = row ? restoreRm(txnId, p.name, [{ type: row.rmState as 'prepared' | 'committed' | 'aborted' }]) : { txnId, rm: p.name, rmState: 'working' as const };
      live = { state, epoch: row?.epoch ?? 0 };
      p.live.set(txnId, live);
    }
    return live;
  }

  private stepWith(p: Participant, txnId: string, input: ParticipantInput): void {
    const live = this.liveOf(p, txnId);
    const result = step(live.state, input, RM_CONFIG);
    live.state = result.state;
    const outbox: Envelope[] = [];
    for (const effect of result.effects) {
      switch (effect.kind) {
        case 'runPrepare': {
          const incarnation = p.incarnation;
          const vote = this.rng.chance(this.yesVote) ? 'Prepared' : 'Aborted';
          this.at(this.rng.int(1, 20), () => {
            if (p.incarnation !== incarnation || !p.up) return;
            this.stepWith(p, txnId, vote === 'Prepared' ? { type: 'localVote', vote } : { type: 'localVote', vote, reason: 'the service refused' });
          });
          break;
        }
        case 'persist':
          p.durable.set(txnId, { rmState: effect.record.type, epoch: live.epoch });
          this.hooks.record(txnId, p.name, effect.record.type);
          break;
        case 'decide':
          this.hooks.learn(txnId, p.name, effect.decision);
          break;
        case 'send':
          outbox.push(this.envelope(p, live, effect.message));
          break;
        case 'setTimer': {
          live.timer?.();
          const incarnation = p.incarnation;
          live.timer = this.at(effect.afterMs, () => {
            if (p.incarnation === incarnation && p.up) this.stepWith(p, txnId, { type: 'timer', timer: effect.timer });
          });
          break;
        }
      }
    }
    // The step's records are durable (above, synchronously) before any of its messages leave.
    for (const envelope of outbox) this.hooks.send(envelope);
  }

  private envelope(p: Participant, live: Live, message: { type: 'Vote' | 'Ack' | 'Query'; txnId: string; vote?: string; reason?: string }): Envelope {
    const common = { v: 1 as const, txnId: message.txnId, protocol: '2pc' as const, from: p.name, epoch: live.epoch, sentAt: new Date().toISOString() };
    switch (message.type) {
      case 'Vote':
        return { ...common, type: 'VOTE', body: { vote: message.vote === 'Prepared' ? 'YES' : 'NO', ...(message.reason ? { reason: message.reason } : {}) } };
      case 'Ack':
        return { ...common, type: 'ACK', body: { outcome: live.state.rmState === 'committed' ? 'COMMIT' : 'ABORT' } };
      case 'Query':
        return { ...common, type: 'QUERY', body: {} };
    }
  }
}
