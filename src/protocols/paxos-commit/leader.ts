/**
 * Paxos Commit, leader role, after PaxosCommit.tla (Phase1a, Phase2a, Decide) and Gray and
 * Lamport 2006 section 4.2. The leader that begins a transaction only asks RMs to prepare and
 * listens; one that takes over (or times out) runs phase 1 in a ballot of its own for every
 * instance it has not seen chosen, and proposes the value of the highest ballot a majority
 * reports, or Aborted when none was accepted. It keeps `tcConsistent` because every leader
 * reads the outcome off the same chosen values, and `decisionStable` because those never change.
 */
import { assertNever } from '../common/assert';
import { Decide, Persist, Send, SetTimer, StepResult, decide, persist, send, setTimer } from '../common/effects';
import { hasQuorum } from '../quorum/majority';
import { LearnerState, emptyLearner, learnPhase2b, outcomeOf } from './learner';
import { Ballot, InstanceReport, InstanceValue, Membership, MessageOf, PaxosCommitMessage, Value, compareBallots } from './messages';

export interface LeaderConfig {
  /** How long the leader waits for the RMs' ballot-0 votes before it runs phase 1 itself. */
  readonly prepareTimeoutMs: number;
  /** How long a ballot may stall (lost messages, a rival leader) before a higher one starts. */
  readonly retryIntervalMs: number;
}

export interface LeaderState {
  readonly txnId: string;
  readonly replica: string;
  readonly membership: Membership;
  /** The highest round this leader has made durable; a restart never reuses it. */
  readonly round: number;
  /** The highest round seen in a rival's promise: the next ballot must beat it. */
  readonly seenRound: number;
  readonly ballot?: Ballot;
  readonly phase: 'listening' | 'phase1' | 'phase2';
  readonly promises: Readonly<Record<string, readonly InstanceReport[]>>;
  readonly learner: LearnerState;
  readonly decision?: 'COMMIT' | 'ABORT';
}

export type LeaderTimer = 'retry';

export type LeaderInput =
  | { readonly type: 'begin' }
  | { readonly type: 'takeover' }
  | { readonly type: 'timer'; readonly timer: LeaderTimer }
  | { readonly type: 'phase1b'; readonly message: MessageOf<'phase1b'> }
  | { readonly type: 'phase2b'; readonly message: MessageOf<'phase2b'> }
  | { readonly type: 'query'; readonly rm: string };

/** Only the round is durable: the outcome can always be read again from the acceptors. */
export interface LeaderRecord {
  readonly type: 'round';
  readonly round: number;
}

export type LeaderEffect = Persist<LeaderRecord> | Send<PaxosCommitMessage> | SetTimer<LeaderTimer> | Decide;
export type LeaderStep = StepResult<LeaderState, LeaderEffect>;

export function initialLeaderState(txnId: string, replica: string, membership: Membership): LeaderState {
  return { txnId, replica, membership, round: 0, seenRound: 0, phase: 'listening', promises: {}, learner: emptyLearner };
}

export function restoreLeader(txnId: string, replica: string, membership: Membership, records: readonly LeaderRecord[]): LeaderState {
  const round = records.reduce((max, r) => Math.max(max, r.round), 0);
  return { ...initialLeaderState(txnId, replica, membership), round, seenRound: round };
}

const unchanged = (state: LeaderState): LeaderStep => ({ state, effects: [] });
const toAcceptors = (state: LeaderState, message: PaxosCommitMessage): LeaderEffect[] =>
  state.membership.acceptors.map((a) => send(a, message));

function outcomeTo(state: LeaderState, rms: readonly string[]): LeaderEffect[] {
  if (!state.decision) return [];
  return rms.map((rm) => send(rm, { type: 'Outcome', txnId: state.txnId, decision: state.decision as 'COMMIT' | 'ABORT' }));
}

function afterLearning(state: LeaderState, learner: LearnerState): LeaderStep {
  const next = { ...state, learner };
  if (state.decision) return unchanged(next);
  const decision = outcomeOf(learner.chosen, state.membership.rms);
  if (!decision) return unchanged(next);
  const decided = { ...next, decision };
  return { state: decided, effects: [decide(decision), ...outcomeTo(decided, state.membership.rms)] };
}

/** Starts phase 1 in a fresh ballot of this leader for every instance not yet known chosen. */
function startBallot(state: LeaderState, config: LeaderConfig): LeaderStep {
  if (state.decision) return unchanged(state);
  const round = Math.max(state.round, state.seenRound) + 1;
  const ballot: Ballot = { round, replica: state.replica };
  const instances = state.membership.rms.filter((rm) => state.learner.chosen[rm] === undefined);
  const next: LeaderState = { ...state, round, ballot, phase: 'phase1', promises: {} };
  const phase1a: PaxosCommitMessage = { type: 'phase1a', txnId: state.txnId, membership: state.membership, ballot, instances };
  return {
    state: next,
    // The round is durable before any acceptor hears of it, so no restart proposes twice in one ballot.
    effects: [persist({ type: 'round', round }), ...toAcceptors(next, phase1a), setTimer('retry', config.retryIntervalMs)],
  };
}

/** The value phase 2a must carry: the highest-ballot value reported, or Aborted if none. */
export function valueToPropose(reports: readonly InstanceReport[]): Value {
  let best: InstanceReport | undefined;
  for (const report of reports) {
    if (!report.maxVBal || report.maxVal === undefined) continue;
    if (!best || compareBallots(report.maxVBal, best.maxVBal as Ballot) > 0) best = report;
  }
  return best?.maxVal ?? 'Aborted';
}

function onPhase1b(state: LeaderState, message: MessageOf<'phase1b'>): LeaderStep {
  if (!message.promised) {
    return unchanged({ ...state, seenRound: Math.max(state.seenRound, message.maxBal.round) });
  }
  if (state.phase !== 'phase1' || !state.ballot || compareBallots(message.ballot, state.ballot) !== 0) return unchanged(state);
  if (!state.membership.acceptors.includes(message.acceptor)) return unchanged(state);
  const promises = { ...state.promises, [message.acceptor]: message.reports };
  const next = { ...state, promises };
  if (!hasQuorum(Object.keys(promises), state.membership.acceptors)) return unchanged(next);
  const all = Object.values(promises).flat();
  const entries: InstanceValue[] = state.membership.rms
    .filter((rm) => state.learner.chosen[rm] === undefined)
    .map((rm) => ({ rm, value: valueToPropose(all.filter((r) => r.rm === rm)) }));
  const phase2a: PaxosCommitMessage = {
    type: 'phase2a',
    txnId: state.txnId,
    membership: state.membership,
    ballot: state.ballot,
    leader: state.replica,
    entries,
  };
  return { state: { ...next, phase: 'phase2' }, effects: toAcceptors(next, phase2a) };
}

export function step(state: LeaderState, input: LeaderInput, config: LeaderConfig): LeaderStep {
  switch (input.type) {
    case 'begin': {
      const prepare: PaxosCommitMessage = { type: 'Prepare', txnId: state.txnId, membership: state.membership, leader: state.replica };
      return {
        state,
        effects: [...state.membership.rms.map((rm) => send(rm, prepare)), setTimer('retry', config.prepareTimeoutMs)],
      };
    }
    case 'takeover':
      return startBallot(state, config);
    case 'timer':
      if (input.timer !== 'retry') return assertNever(input.timer, 'leader timer');
      return startBallot(state, config);
    case 'phase1b':
      return onPhase1b(state, input.message);
    case 'phase2b': {
      const { acceptor, ballot, entries } = input.message;
      return afterLearning(state, learnPhase2b(state.learner, acceptor, ballot, entries, state.membership.acceptors));
    }
    case 'query':
      // An undecided leader stays silent; its driver decides whether to take over.
      return { state, effects: outcomeTo(state, [input.rm]) };
    default:
      return assertNever(input, 'leader input');
  }
}
