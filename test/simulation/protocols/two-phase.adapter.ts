/**
 * Runs the production 2PC cores (src/protocols/two-phase) in the simulator. The TM's
 * transaction row (participants) is durable from the start, as the decision log makes it;
 * everything else a restarted TM or RM knows comes from its own records.
 */
import * as tm from '../../../src/protocols/two-phase/coordinator';
import * as rm from '../../../src/protocols/two-phase/participant';
import { RmToTm, TM, TmToRm, Vote } from '../../../src/protocols/two-phase/messages';
import { Delivery, Host, ProtocolAdapter, SimEffect, SimMessage, TimerOutcome } from '../adapter';
import { StateTable } from './states';

export const TWO_PHASE_TM_CONFIG: tm.TmConfig = { prepareTimeoutMs: 300, resendIntervalMs: 100 };
export const TWO_PHASE_RM_CONFIG: rm.RmConfig = { queryIntervalMs: 200 };

/** What a TM knows after a restart: the core's own restore from the transaction row and its records. */
export const restoreTm = tm.restoreCoordinator;

export const restoreRm = rm.restoreParticipant;

export class TwoPhaseAdapter implements ProtocolAdapter {
  readonly protocol = '2pc' as const;
  readonly rmPool: readonly string[];
  readonly nodes: readonly string[];
  readonly everyRmFinishes = true;
  private readonly tms = new StateTable<tm.CoordinatorState>();
  private readonly rms = new StateTable<rm.ParticipantState>();
  private readonly registry = new Map<string, readonly string[]>();

  constructor(rmCount = 4) {
    this.rmPool = Array.from({ length: rmCount }, (_, i) => `rm${i + 1}`);
    this.nodes = [TM, ...this.rmPool];
  }

  begin(txnId: string, rms: readonly string[], host: Host): { node: string; delivery: Delivery } | undefined {
    if (!host.isUp(TM)) return undefined;
    this.registry.set(txnId, rms);
    this.tms.set(TM, txnId, 'tm', tm.initialCoordinatorState(txnId, rms));
    return { node: TM, delivery: { txnId, role: 'tm', input: { type: 'begin' } } };
  }

  onMessage(node: string, message: SimMessage): Delivery[] {
    const txnId = message.txnId;
    if (node === TM) {
      const m = message as RmToTm;
      if (!this.tms.get(TM, txnId, 'tm')) return [];
      const input: tm.CoordinatorInput =
        m.type === 'Vote' ? { type: 'vote', rm: m.rm, vote: m.vote, reason: m.reason } : m.type === 'Ack' ? { type: 'ack', rm: m.rm } : { type: 'query', rm: m.rm };
      return [{ txnId, role: 'tm', input }];
    }
    const m = message as TmToRm;
    if (!this.rms.get(node, txnId, 'rm')) this.rms.set(node, txnId, 'rm', rm.initialParticipantState(txnId, node));
    const input: rm.ParticipantInput = m.type === 'Prepare' ? { type: 'prepare' } : m.type === 'Commit' ? { type: 'commit' } : { type: 'abort' };
    return [{ txnId, role: 'rm', input }];
  }

  onTimer(_node: string, _txnId: string, _role: string, timer: string): TimerOutcome {
    return { deliver: { type: 'timer', timer } };
  }

  localVote(vote: Vote): rm.ParticipantInput {
    return { type: 'localVote', vote, reason: vote === 'Aborted' ? 'the service refused' : undefined };
  }

  step(node: string, { txnId, role, input }: Delivery, _host?: Host): readonly SimEffect[] {
    if (role === 'tm') {
      const state = this.tms.get(node, txnId, role);
      if (!state) return [];
      const result = tm.step(state, input as tm.CoordinatorInput, TWO_PHASE_TM_CONFIG);
      this.tms.set(node, txnId, role, result.state);
      return result.effects as readonly SimEffect[];
    }
    const state = this.rms.get(node, txnId, role) ?? rm.initialParticipantState(txnId, node);
    const result = rm.step(state, input as rm.ParticipantInput, TWO_PHASE_RM_CONFIG);
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
      for (const [txnId, rms] of this.registry) {
        const state = restoreTm(txnId, rms, host.records(TM, txnId, 'tm') as tm.TmRecord[]);
        this.tms.set(TM, txnId, 'tm', state);
        if (!state.done) out.push({ txnId, role: 'tm', input: { type: 'recover' } });
      }
      return out;
    }
    return host.durableKeys(node).map(({ txnId, role }) => {
      this.rms.set(node, txnId, role, restoreRm(txnId, node, host.records(node, txnId, role) as rm.RmRecord[]));
      return { txnId, role, input: { type: 'recover' } };
    });
  }

  classify(role: string, record: unknown): 'prepared' | 'committed' | 'aborted' | undefined {
    return role === 'rm' ? (record as rm.RmRecord).type : undefined;
  }

  mayBlock(): boolean {
    return false;
  }

  coordinatorPending(txnId: string): boolean {
    const state = this.tms.get(TM, txnId, 'tm');
    return state !== undefined && tm.decisionOf(state) === undefined;
  }

  coordinatorState(txnId: string): tm.CoordinatorState | undefined {
    return this.tms.get(TM, txnId, 'tm');
  }

  participantState(node: string, txnId: string): rm.ParticipantState | undefined {
    return this.rms.get(node, txnId, 'rm');
  }
}
