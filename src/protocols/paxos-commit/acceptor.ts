/**
 * Paxos Commit, acceptor role, after PaxosCommit.tla (actions Phase1b and Phase2b) and Gray
 * and Lamport 2006 sections 4.2 and 5. One acceptor serves every instance of a transaction;
 * per instance it keeps maxBal (its promise) and maxVBal/maxVal (what it accepted), makes
 * them durable before any reply reveals them (so Paxos safety survives crashes), and bundles
 * its ballot-0 phase 2b messages into one message and one stable write, as section 5 counts.
 */
import { assertNever } from '../common/assert';
import { Persist, Send, StepResult, persist, send } from '../common/effects';
import {
  BALLOT_ZERO,
  Ballot,
  InstanceReport,
  InstanceValue,
  Membership,
  MessageOf,
  PaxosCommitMessage,
  Value,
  compareBallots,
  isBallotZero,
} from './messages';

export interface AcceptorConfig {
  /** The paper's faster variant: phase 2b goes to every RM as well as to the leader. */
  readonly phase2bToRms: boolean;
}

export interface InstanceState {
  readonly maxBal: Ballot;
  readonly maxVBal?: Ballot;
  readonly maxVal?: Value;
}

export interface AcceptorState {
  readonly txnId: string;
  readonly acceptor: string;
  readonly membership?: Membership;
  /** The leader named by the RMs' ballot-0 phase 2a messages. */
  readonly leader?: string;
  readonly instances: Readonly<Record<string, InstanceState>>;
  /** Instances changed since the last persist. */
  readonly dirty: readonly string[];
  /** Ballot-0 acceptances not yet reported: held back so that one phase 2b carries them all. */
  readonly pending: readonly string[];
}

export type AcceptorInput =
  | { readonly type: 'phase2a'; readonly message: MessageOf<'phase2a'> }
  | { readonly type: 'phase1a'; readonly message: MessageOf<'phase1a'> };

/** One stable write: the instances it changed, plus what a restart needs to route replies. */
export interface AcceptorRecord {
  readonly type: 'instances';
  readonly membership: Membership;
  readonly leader?: string;
  readonly instances: Readonly<Record<string, InstanceState>>;
}

export type AcceptorEffect = Persist<AcceptorRecord> | Send<PaxosCommitMessage>;
export type AcceptorStep = StepResult<AcceptorState, AcceptorEffect>;

export function initialAcceptorState(txnId: string, acceptor: string): AcceptorState {
  return { txnId, acceptor, instances: {}, dirty: [], pending: [] };
}

/** Rebuilds an acceptor from its durable records after a restart; only durable promises count. */
export function restoreAcceptor(txnId: string, acceptor: string, records: readonly AcceptorRecord[]): AcceptorState {
  let state = initialAcceptorState(txnId, acceptor);
  for (const record of records) {
    state = {
      ...state,
      membership: record.membership,
      leader: record.leader ?? state.leader,
      instances: { ...state.instances, ...record.instances },
    };
  }
  return state;
}

const instanceOf = (state: AcceptorState, rm: string): InstanceState => state.instances[rm] ?? { maxBal: BALLOT_ZERO };
const union = (a: readonly string[], b: readonly string[]): string[] => [...a, ...b.filter((x) => !a.includes(x))];

/** Persists every dirty instance in one write; the caller's sends follow it (effects.ts rule). */
function flush(state: AcceptorState): { state: AcceptorState; effects: AcceptorEffect[] } {
  if (state.dirty.length === 0 || !state.membership) return { state, effects: [] };
  const instances: Record<string, InstanceState> = {};
  for (const rm of state.dirty) instances[rm] = instanceOf(state, rm);
  const record: AcceptorRecord = { type: 'instances', membership: state.membership, leader: state.leader, instances };
  return { state: { ...state, dirty: [] }, effects: [persist(record)] };
}

function phase2bTo(state: AcceptorState, leader: string | undefined, ballot: Ballot, entries: InstanceValue[], config: AcceptorConfig): AcceptorEffect[] {
  if (entries.length === 0) return [];
  const message: PaxosCommitMessage = { type: 'phase2b', txnId: state.txnId, acceptor: state.acceptor, ballot, entries };
  const targets = leader ? [leader] : [];
  if (config.phase2bToRms && state.membership) targets.push(...state.membership.rms.filter((rm) => !targets.includes(rm)));
  return targets.map((to) => send(to, message));
}

function accept(state: AcceptorState, message: MessageOf<'phase2a'>): { state: AcceptorState; accepted: InstanceValue[]; repeated: InstanceValue[] } {
  const instances = { ...state.instances };
  const accepted: InstanceValue[] = [];
  const repeated: InstanceValue[] = [];
  for (const entry of message.entries) {
    if (!message.membership.rms.includes(entry.rm)) continue;
    const current = instanceOf(state, entry.rm);
    const sameVote = current.maxVBal && compareBallots(current.maxVBal, message.ballot) === 0;
    if (sameVote) {
      // A duplicate: answer it again only once the acceptance is durable.
      if (!state.dirty.includes(entry.rm)) repeated.push({ rm: entry.rm, value: current.maxVal as Value });
      continue;
    }
    if (compareBallots(message.ballot, current.maxBal) < 0) continue;
    instances[entry.rm] = { maxBal: message.ballot, maxVBal: message.ballot, maxVal: entry.value };
    accepted.push(entry);
  }
  const rms = accepted.map((e) => e.rm);
  return { state: { ...state, instances, dirty: union(state.dirty, rms) }, accepted, repeated };
}

function onPhase2a(state0: AcceptorState, message: MessageOf<'phase2a'>, config: AcceptorConfig): AcceptorStep {
  const known: AcceptorState = {
    ...state0,
    membership: state0.membership ?? message.membership,
    leader: isBallotZero(message.ballot) ? message.leader : state0.leader,
  };
  const { state, accepted, repeated } = accept(known, message);
  const resend = phase2bTo(state, message.leader, message.ballot, repeated, config);
  if (!isBallotZero(message.ballot)) {
    // A leader's ballot is not bundled: the leader is already in recovery and waits for it.
    const flushed = flush(state);
    return { state: flushed.state, effects: [...flushed.effects, ...phase2bTo(state, message.leader, message.ballot, accepted, config), ...resend] };
  }
  const pending = union(state.pending, accepted.map((e) => e.rm));
  const membership = state.membership as Membership;
  const everyRmAccepted = membership.rms.every((rm) => instanceOf(state, rm).maxVBal !== undefined);
  // An Aborted vote decides the transaction, so it is reported at once instead of bundled.
  const abortSeen = accepted.some((e) => e.value === 'Aborted');
  if (!everyRmAccepted && !abortSeen) return { state: { ...state, pending }, effects: resend };
  const entries = pending
    .filter((rm) => isBallotZero(instanceOf(state, rm).maxVBal ?? BALLOT_ZERO) && instanceOf(state, rm).maxVal !== undefined)
    .map((rm) => ({ rm, value: instanceOf(state, rm).maxVal as Value }));
  const flushed = flush({ ...state, pending: [] });
  return { state: flushed.state, effects: [...flushed.effects, ...phase2bTo(state, state.leader, BALLOT_ZERO, entries, config), ...resend] };
}

function onPhase1a(state0: AcceptorState, message: MessageOf<'phase1a'>): AcceptorStep {
  const state: AcceptorState = { ...state0, membership: state0.membership ?? message.membership };
  const instances = message.instances.filter((rm) => message.membership.rms.includes(rm));
  const higher = instances.map((rm) => instanceOf(state, rm).maxBal).filter((b) => compareBallots(b, message.ballot) > 0);
  const leader = message.ballot.replica;
  if (higher.length > 0) {
    const maxBal = higher.reduce((a, b) => (compareBallots(a, b) >= 0 ? a : b));
    const nack: PaxosCommitMessage = { type: 'phase1b', txnId: state.txnId, acceptor: state.acceptor, ballot: message.ballot, promised: false, maxBal, reports: [] };
    return { state, effects: [send(leader, nack)] };
  }
  const promised = { ...state.instances };
  for (const rm of instances) promised[rm] = { ...instanceOf(state, rm), maxBal: message.ballot };
  const reports: InstanceReport[] = instances.map((rm) => ({ rm, maxVBal: promised[rm].maxVBal, maxVal: promised[rm].maxVal }));
  const flushed = flush({ ...state, instances: promised, dirty: union(state.dirty, instances) });
  const reply: PaxosCommitMessage = {
    type: 'phase1b',
    txnId: state.txnId,
    acceptor: state.acceptor,
    ballot: message.ballot,
    promised: true,
    maxBal: message.ballot,
    reports,
  };
  return { state: flushed.state, effects: [...flushed.effects, send(leader, reply)] };
}

export function step(state: AcceptorState, input: AcceptorInput, config: AcceptorConfig): AcceptorStep {
  switch (input.type) {
    case 'phase2a':
      return onPhase2a(state, input.message, config);
    case 'phase1a':
      return onPhase1a(state, input.message);
    default:
      return assertNever(input, 'acceptor input');
  }
}
