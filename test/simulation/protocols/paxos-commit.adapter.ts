/**
 * Runs the production Paxos Commit cores (src/protocols/paxos-commit) in the simulator: 2F+1
 * replicas, each an acceptor and a leader candidate, and a pool of RMs. Leadership comes from
 * the world's Omega, which before healing lets rival leaders run at once (safety must hold
 * regardless) and after healing names one replica (liveness needs only that).
 */
import * as acceptor from '../../../src/protocols/paxos-commit/acceptor';
import * as leader from '../../../src/protocols/paxos-commit/leader';
import * as rm from '../../../src/protocols/paxos-commit/participant';
import { Membership, PaxosCommitMessage } from '../../../src/protocols/paxos-commit/messages';
import { Vote } from '../../../src/protocols/two-phase/messages';
import { acceptorCount } from '../../../src/protocols/quorum/majority';
import { Delivery, Host, ProtocolAdapter, SimEffect, SimMessage, TimerOutcome } from '../adapter';
import { StateTable } from './states';

export interface PaxosCommitOptions {
  readonly f: number;
  readonly rmCount?: number;
  readonly phase2aFanout?: rm.RmConfig['phase2aFanout'];
  readonly phase2bToRms?: boolean;
}

export const PAXOS_LEADER_CONFIG: leader.LeaderConfig = { prepareTimeoutMs: 300, retryIntervalMs: 150 };

type AnyState = acceptor.AcceptorState | leader.LeaderState | rm.ParticipantState;

export class PaxosCommitAdapter implements ProtocolAdapter {
  readonly protocol = 'paxos-commit' as const;
  readonly rmPool: readonly string[];
  readonly replicas: readonly string[];
  readonly nodes: readonly string[];
  readonly everyRmFinishes = false;
  private readonly states = new StateTable<AnyState>();
  /** Leaders whose retry timer is armed; a query only triggers a takeover in an idle leader. */
  private readonly retryArmed = new Set<string>();
  private readonly owners = new Map<string, string>();
  private readonly acceptorConfig: acceptor.AcceptorConfig;
  private readonly rmConfig: rm.RmConfig;

  constructor(readonly options: PaxosCommitOptions) {
    this.rmPool = Array.from({ length: options.rmCount ?? 4 }, (_, i) => `rm${i + 1}`);
    this.replicas = Array.from({ length: acceptorCount(options.f) }, (_, i) => `r${i}`);
    this.nodes = [...this.replicas, ...this.rmPool];
    this.acceptorConfig = { phase2bToRms: options.phase2bToRms ?? false };
    this.rmConfig = { phase2aFanout: options.phase2aFanout ?? 'all', queryIntervalMs: 200 };
  }

  membership(rms: readonly string[]): Membership {
    return { rms, acceptors: this.replicas };
  }

  begin(txnId: string, rms: readonly string[], host: Host, pick: (up: readonly string[]) => string) {
    const up = this.replicas.filter((r) => host.isUp(r));
    if (up.length === 0) return undefined;
    const node = pick(up);
    this.owners.set(txnId, node);
    this.states.set(node, txnId, 'leader', leader.initialLeaderState(txnId, node, this.membership(rms)));
    return { node, delivery: { txnId, role: 'leader', input: { type: 'begin' } } };
  }

  private leaderAt(node: string, txnId: string, host: Host, membership?: Membership): leader.LeaderState | undefined {
    const known = this.states.get(node, txnId, 'leader') as leader.LeaderState | undefined;
    if (known || !membership) return known;
    const restored = leader.restoreLeader(txnId, node, membership, host.records(node, txnId, 'leader') as leader.LeaderRecord[]);
    this.states.set(node, txnId, 'leader', restored);
    return restored;
  }

  private acceptorAt(node: string, txnId: string, host: Host): acceptor.AcceptorState {
    const known = this.states.get(node, txnId, 'acceptor') as acceptor.AcceptorState | undefined;
    if (known) return known;
    const restored = acceptor.restoreAcceptor(txnId, node, host.records(node, txnId, 'acceptor') as acceptor.AcceptorRecord[]);
    this.states.set(node, txnId, 'acceptor', restored);
    return restored;
  }

  onMessage(node: string, message: SimMessage, host: Host): Delivery[] {
    const m = message as PaxosCommitMessage;
    const txnId = m.txnId;
    switch (m.type) {
      case 'phase1a':
      case 'phase2a':
        this.acceptorAt(node, txnId, host);
        return [{ txnId, role: 'acceptor', input: { type: m.type, message: m } }];
      case 'phase1b':
        return this.leaderAt(node, txnId, host) ? [{ txnId, role: 'leader', input: { type: 'phase1b', message: m } }] : [];
      case 'phase2b': {
        if (this.rmPool.includes(node)) return this.states.get(node, txnId, 'rm') ? [{ txnId, role: 'rm', input: { type: 'phase2b', message: m } }] : [];
        return this.leaderAt(node, txnId, host) ? [{ txnId, role: 'leader', input: { type: 'phase2b', message: m } }] : [];
      }
      case 'Query': {
        const state = this.leaderAt(node, txnId, host, m.membership) as leader.LeaderState;
        const out: Delivery[] = [{ txnId, role: 'leader', input: { type: 'query', rm: m.rm } }];
        const idle = !this.retryArmed.has(`${node}|${txnId}`);
        if (!state.decision && idle && host.believesLeader(node, txnId)) out.push({ txnId, role: 'leader', input: { type: 'takeover' } });
        return out;
      }
      case 'Prepare':
      case 'Outcome': {
        if (!this.states.get(node, txnId, 'rm')) this.states.set(node, txnId, 'rm', rm.initialParticipantState(txnId, node));
        const input: rm.ParticipantInput = m.type === 'Prepare' ? { type: 'prepare', message: m } : { type: 'outcome', decision: m.decision };
        return [{ txnId, role: 'rm', input }];
      }
    }
  }

  onTimer(node: string, txnId: string, role: string, timer: string, host: Host): TimerOutcome {
    if (role !== 'leader') return { deliver: { type: 'timer', timer } };
    this.retryArmed.delete(`${node}|${txnId}`);
    const state = this.states.get(node, txnId, role) as leader.LeaderState | undefined;
    if (!state || state.decision) return 'ignore';
    if (host.believesLeader(node, txnId)) return { deliver: { type: 'timer', timer } };
    // Not the leader now: check again later, since leadership moves while faults last.
    return host.isHealed() ? 'ignore' : 'defer';
  }

  localVote(vote: Vote): rm.ParticipantInput {
    return { type: 'localVote', vote };
  }

  step(node: string, { txnId, role, input }: Delivery, host: Host): readonly SimEffect[] {
    let effects: readonly SimEffect[];
    if (role === 'acceptor') {
      const result = acceptor.step(this.acceptorAt(node, txnId, host), input as acceptor.AcceptorInput, this.acceptorConfig);
      this.states.set(node, txnId, role, result.state);
      effects = result.effects as readonly SimEffect[];
    } else if (role === 'leader') {
      const state = this.leaderAt(node, txnId, host);
      if (!state) return [];
      const result = leader.step(state, input as leader.LeaderInput, PAXOS_LEADER_CONFIG);
      this.states.set(node, txnId, role, result.state);
      effects = result.effects as readonly SimEffect[];
      if (effects.some((e) => e.kind === 'setTimer')) this.retryArmed.add(`${node}|${txnId}`);
    } else {
      const state = (this.states.get(node, txnId, role) as rm.ParticipantState | undefined) ?? rm.initialParticipantState(txnId, node);
      const result = rm.step(state, input as rm.ParticipantInput, this.rmConfig);
      this.states.set(node, txnId, role, result.state);
      effects = result.effects as readonly SimEffect[];
    }
    return effects;
  }

  hasState(node: string, txnId: string): boolean {
    return this.states.has(node, txnId);
  }

  crash(node: string): void {
    this.states.forget(node);
    for (const k of [...this.retryArmed]) if (k.startsWith(`${node}|`)) this.retryArmed.delete(k);
  }

  restart(node: string, host: Host): Delivery[] {
    // Acceptors and leaders come back lazily from their records when a message needs them.
    if (!this.rmPool.includes(node)) return [];
    return host.durableKeys(node).map(({ txnId, role }) => {
      this.states.set(node, txnId, role, rm.restoreParticipant(txnId, node, host.records(node, txnId, role) as rm.RmRecord[]));
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
    const owner = this.owners.get(txnId);
    const state = owner ? this.leaderState(owner, txnId) : undefined;
    return state !== undefined && state.decision === undefined;
  }

  /** Gives `node` a leader role for the transaction, as a query from an RM would. */
  adopt(node: string, txnId: string, rms: readonly string[], host: Host): void {
    this.leaderAt(node, txnId, host, this.membership(rms));
  }

  leaderState(node: string, txnId: string): leader.LeaderState | undefined {
    return this.states.get(node, txnId, 'leader') as leader.LeaderState | undefined;
  }

  acceptorState(node: string, txnId: string): acceptor.AcceptorState | undefined {
    return this.states.get(node, txnId, 'acceptor') as acceptor.AcceptorState | undefined;
  }
}
