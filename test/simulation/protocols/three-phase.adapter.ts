/**
 * Runs the production 3PC cores (src/protocols/three-phase) in the simulator. The cores'
 * timeouts stand for failure suspicions; this adapter asks the world's failure detector
 * before it lets one fire, which is exactly where 3PC's synchrony assumption lives: with
 * the perfect detector it must never split, with the timeout detector it may.
 */
import * as tm from '../../../src/protocols/three-phase/coordinator';
import * as rm from '../../../src/protocols/three-phase/participant';
import { TM, ThreePhaseMessage, Vote } from '../../../src/protocols/three-phase/messages';
import { Delivery, Host, ProtocolAdapter, SimEffect, SimMessage, TimerOutcome } from '../adapter';
import { StateTable } from './states';

export const THREE_PHASE_TM_CONFIG: tm.TmConfig = { voteTimeoutMs: 300, ackTimeoutMs: 150, resendIntervalMs: 100 };
export const THREE_PHASE_RM_CONFIG: rm.RmConfig = { terminationTimeoutMs: 150, collectTimeoutMs: 150, queryIntervalMs: 200 };

function toTmInput(m: ThreePhaseMessage): tm.CoordinatorInput | undefined {
  switch (m.type) {
    case 'Vote':
      return { type: 'vote', rm: m.rm, vote: m.vote };
    case 'PreCommitAck':
      return { type: 'preCommitAck', rm: m.rm };
    case 'Ack':
      return { type: 'ack', rm: m.rm };
    case 'DoCommit':
      return { type: 'learned', decision: 'COMMIT' };
    case 'Abort':
      return { type: 'learned', decision: 'ABORT' };
    case 'DecisionReq':
      return { type: 'decisionReq', from: m.from };
    default:
      return undefined;
  }
}

function toRmInput(m: ThreePhaseMessage): rm.ParticipantInput | undefined {
  switch (m.type) {
    case 'CanCommit':
      return { type: 'canCommit', rms: m.rms };
    case 'PreCommit':
      return { type: 'preCommit', epoch: m.epoch, from: m.from };
    case 'DoCommit':
      return { type: 'decision', decision: 'COMMIT', from: m.from };
    case 'Abort':
      return { type: 'decision', decision: 'ABORT', from: m.from };
    case 'StateReq':
      return { type: 'stateReq', epoch: m.epoch, from: m.from };
    case 'StateReport':
      return { type: 'stateReport', rm: m.rm, epoch: m.epoch, state: m.state, newerEpoch: m.newerEpoch };
    case 'PreCommitAck':
      return { type: 'preCommitAck', rm: m.rm, epoch: m.epoch };
    case 'DecisionReq':
      return { type: 'decisionReq', from: m.from };
    default:
      return undefined;
  }
}

export class ThreePhaseAdapter implements ProtocolAdapter {
  readonly protocol = '3pc' as const;
  readonly rmPool: readonly string[];
  readonly nodes: readonly string[];
  readonly everyRmFinishes = false;
  private readonly tms = new StateTable<tm.CoordinatorState>();
  private readonly rms = new StateTable<rm.ParticipantState>();
  /** The decision log's transaction rows; `completed` once every RM acknowledged the outcome. */
  private readonly registry = new Map<string, { rms: readonly string[]; completed: boolean }>();

  constructor(rmCount = 4) {
    this.rmPool = Array.from({ length: rmCount }, (_, i) => `rm${i + 1}`);
    this.nodes = [TM, ...this.rmPool];
  }

  begin(txnId: string, rms: readonly string[], host: Host): { node: string; delivery: Delivery } | undefined {
    if (!host.isUp(TM)) return undefined;
    this.registry.set(txnId, { rms, completed: false });
    this.tms.set(TM, txnId, 'tm', tm.initialCoordinatorState(txnId, rms));
    return { node: TM, delivery: { txnId, role: 'tm', input: { type: 'begin' } } };
  }

  onMessage(node: string, message: SimMessage): Delivery[] {
    const m = message as ThreePhaseMessage;
    if (node === TM) {
      const input = toTmInput(m);
      return input && this.tms.get(TM, m.txnId, 'tm') ? [{ txnId: m.txnId, role: 'tm', input }] : [];
    }
    const input = toRmInput(m);
    if (!input) return [];
    if (!this.rms.get(node, m.txnId, 'rm')) this.rms.set(node, m.txnId, 'rm', rm.initialParticipantState(m.txnId, node));
    return [{ txnId: m.txnId, role: 'rm', input }];
  }

  onTimer(node: string, txnId: string, role: string, timer: string, host: Host, deferrals: number): TimerOutcome {
    if (role === 'tm') {
      const state = this.tms.get(node, txnId, role);
      if (timer !== 'ackTimeout' || !state || state.tmState !== 'precommitting') return { deliver: { type: 'timer', timer } };
      const silent = state.rms.filter((r) => !state.preCommitAcked.includes(r));
      return silent.every((r) => host.suspects(TM, txnId, r, deferrals)) ? { deliver: { type: 'timer', timer } } : 'defer';
    }
    const state = this.rms.get(node, txnId, role);
    if (!state || rm.isDecided(state)) return 'ignore';
    if (timer === 'query') return { deliver: { type: 'timer', timer } };
    if (timer === 'collect') {
      const awaiting = state.termination?.awaiting ?? [];
      if (!state.termination) return 'ignore';
      return awaiting.every((r) => host.suspects(node, txnId, r, deferrals)) ? { deliver: { type: 'timer', timer } } : 'defer';
    }
    if (state.recovered || state.coordinator === node) return 'ignore';
    if (!host.suspects(node, txnId, state.coordinator, deferrals)) return 'defer';
    const operational = state.rms.filter((r) => !host.suspects(node, txnId, r, 0));
    return { deliver: { type: 'coordinatorFailed', operational } };
  }

  localVote(vote: Vote): rm.ParticipantInput {
    return { type: 'localVote', vote };
  }

  step(node: string, { txnId, role, input }: Delivery, _host?: Host): readonly SimEffect[] {
    if (role === 'tm') {
      const state = this.tms.get(node, txnId, role);
      if (!state) return [];
      const result = tm.step(state, input as tm.CoordinatorInput, THREE_PHASE_TM_CONFIG);
      this.tms.set(node, txnId, role, result.state);
      const row = this.registry.get(txnId);
      if (row && result.state.acked.length === result.state.rms.length) row.completed = true;
      return result.effects as readonly SimEffect[];
    }
    const state = this.rms.get(node, txnId, role) ?? rm.initialParticipantState(txnId, node);
    const result = rm.step(state, input as rm.ParticipantInput, THREE_PHASE_RM_CONFIG);
    this.rms.set(node, txnId, role, result.state);
    return result.effects as readonly SimEffect[];
  }

  hasState(node: string, txnId: string): boolean {
    return this.rms.has(node, txnId);
  }

  crash(node: string): void {
    this.tms.forget(node);
    this.rms.forget(node);
  }

  restart(node: string, host: Host): Delivery[] {
    if (node === TM) {
      const out: Delivery[] = [];
      for (const [txnId, row] of this.registry) {
        if (row.completed) continue;
        this.tms.set(TM, txnId, 'tm', tm.restoreCoordinator(txnId, row.rms, host.records(TM, txnId, 'tm') as tm.TmRecord[]));
        out.push({ txnId, role: 'tm', input: { type: 'recover' } });
      }
      return out;
    }
    return host.durableKeys(node).map(({ txnId, role }) => {
      this.rms.set(node, txnId, role, rm.restoreParticipant(txnId, node, host.records(node, txnId, role) as rm.RmRecord[]));
      return { txnId, role, input: { type: 'recover' } };
    });
  }

  classify(role: string, record: unknown): 'prepared' | 'committed' | 'aborted' | undefined {
    if (role !== 'rm') return undefined;
    const type = (record as rm.RmRecord).type;
    return type === 'precommitted' ? 'prepared' : type;
  }

  /** 3PC blocks only when the coordinator and every participant failed during the transaction. */
  mayBlock(txnId: string, rms: readonly string[], host: Host): boolean {
    return host.failed(txnId, TM) && rms.every((r) => host.failed(txnId, r));
  }

  coordinatorPending(txnId: string): boolean {
    const state = this.tms.get(TM, txnId, 'tm');
    return state !== undefined && tm.decisionOf(state) === undefined;
  }

  participantState(node: string, txnId: string): rm.ParticipantState | undefined {
    return this.rms.get(node, txnId, 'rm');
  }

  coordinatorState(txnId: string): tm.CoordinatorState | undefined {
    return this.tms.get(TM, txnId, 'tm');
  }
}
