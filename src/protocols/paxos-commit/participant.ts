/**
 * Paxos Commit, resource manager role, after PaxosCommit.tla (RMPrepare, RMChooseToAbort,
 * RMRcvCommitMsg, RMRcvAbortMsg) and Gray and Lamport 2006 section 4.2. The RM is the
 * proposer of ballot 0 of its own instance: it makes its vote durable and sends phase 2a
 * straight to the acceptors, so no leader is on the path of a vote. It keeps `validity` (a
 * Prepared vote is durable before it leaves) and `decisionStable` (an outcome is final).
 */
import { assertNever } from '../common/assert';
import { Decide, Decision, Persist, Send, SetTimer, StepResult, decide, persist, send, setTimer } from '../common/effects';
import { majority } from '../quorum/majority';
import { LearnerState, emptyLearner, learnPhase2b, outcomeOf } from './learner';
import { BALLOT_ZERO, Membership, MessageOf, PaxosCommitMessage, Value } from './messages';
import { RunPrepare } from '../two-phase/participant';

export type RmState = 'working' | 'preparing' | 'prepared' | 'committed' | 'aborted';

export interface RmConfig {
  /**
   * `majority` sends ballot 0 to the first F+1 acceptors only, the normal-case economy
   * Gray and Lamport count in section 5; `all` sends it to all 2F+1, which spares a leader
   * takeover when one of those F+1 is down.
   */
  readonly phase2aFanout: 'majority' | 'all';
  readonly queryIntervalMs: number;
}

export interface ParticipantState {
  readonly txnId: string;
  readonly rm: string;
  readonly rmState: RmState;
  readonly membership?: Membership;
  readonly leader?: string;
  /** Used only when acceptors also send phase 2b to the RMs. */
  readonly learner: LearnerState;
}

export type RmTimer = 'query';

export type ParticipantInput =
  | { readonly type: 'prepare'; readonly message: MessageOf<'Prepare'> }
  | { readonly type: 'localVote'; readonly vote: Value; readonly reason?: string }
  | { readonly type: 'outcome'; readonly decision: Decision }
  | { readonly type: 'phase2b'; readonly message: MessageOf<'phase2b'> }
  | { readonly type: 'timer'; readonly timer: RmTimer }
  | { readonly type: 'recover' };

export type RmRecord =
  | { readonly type: 'prepared'; readonly membership: Membership; readonly leader: string }
  | { readonly type: 'aborted'; readonly reason?: string }
  | { readonly type: 'committed' };

export type ParticipantEffect = Persist<RmRecord> | Send<PaxosCommitMessage> | SetTimer<RmTimer> | Decide | RunPrepare;
export type ParticipantStep = StepResult<ParticipantState, ParticipantEffect>;

export function initialParticipantState(txnId: string, rm: string): ParticipantState {
  return { txnId, rm, rmState: 'working', learner: emptyLearner };
}

export function restoreParticipant(txnId: string, rm: string, records: readonly RmRecord[]): ParticipantState {
  let state = initialParticipantState(txnId, rm);
  for (const record of records) {
    if (record.type === 'prepared') state = { ...state, rmState: 'prepared', membership: record.membership, leader: record.leader };
    else state = { ...state, rmState: record.type };
  }
  return state;
}

const unchanged = (state: ParticipantState): ParticipantStep => ({ state, effects: [] });

function phase2aTargets(membership: Membership, config: RmConfig): readonly string[] {
  const { acceptors } = membership;
  return config.phase2aFanout === 'all' ? acceptors : acceptors.slice(0, majority(acceptors.length));
}

function proposeBallotZero(state: ParticipantState, value: Value, config: RmConfig): ParticipantEffect[] {
  const membership = state.membership as Membership;
  const phase2a: PaxosCommitMessage = {
    type: 'phase2a',
    txnId: state.txnId,
    membership,
    ballot: BALLOT_ZERO,
    leader: state.leader as string,
    entries: [{ rm: state.rm, value }],
  };
  return phase2aTargets(membership, config).map((a) => send(a, phase2a));
}

function onPrepare(state: ParticipantState, message: MessageOf<'Prepare'>, config: RmConfig): ParticipantStep {
  switch (state.rmState) {
    case 'working':
      return {
        state: { ...state, rmState: 'preparing', membership: message.membership, leader: message.leader },
        effects: [{ kind: 'runPrepare' }],
      };
    case 'prepared':
      // A repeated Prepare (a new leader, or a duplicate): repeat the same ballot-0 vote.
      return { state, effects: proposeBallotZero(state, 'Prepared', config) };
    case 'preparing':
    case 'committed':
    case 'aborted':
      return unchanged(state);
    default:
      return assertNever(state.rmState, 'rmState');
  }
}

function onLocalVote(state: ParticipantState, vote: Value, reason: string | undefined, config: RmConfig): ParticipantStep {
  if (state.rmState !== 'preparing' || !state.membership || !state.leader) return unchanged(state);
  if (vote === 'Prepared') {
    const record: RmRecord = { type: 'prepared', membership: state.membership, leader: state.leader };
    return {
      state: { ...state, rmState: 'prepared' },
      effects: [persist(record), ...proposeBallotZero(state, vote, config), setTimer('query', config.queryIntervalMs)],
    };
  }
  // RMChooseToAbort: a no vote is an outcome for this RM at once; ballot 0 tells everyone else.
  return {
    state: { ...state, rmState: 'aborted' },
    effects: [persist({ type: 'aborted', reason }), decide('ABORT'), ...proposeBallotZero(state, vote, config)],
  };
}

function onOutcome(state: ParticipantState, decision: Decision): ParticipantStep {
  if (state.rmState === 'committed' || state.rmState === 'aborted') return unchanged(state);
  // COMMIT needs this RM's own Prepared vote; before it, only ABORT can be true.
  if (decision === 'COMMIT' && state.rmState !== 'prepared') return unchanged(state);
  // The prepare handler is still running: its verdict comes first, then the outcome is asked for.
  if (state.rmState === 'preparing') return unchanged(state);
  const rmState = decision === 'COMMIT' ? 'committed' : 'aborted';
  return { state: { ...state, rmState }, effects: [persist({ type: rmState }), decide(decision)] };
}

function onPhase2b(state: ParticipantState, message: MessageOf<'phase2b'>): ParticipantStep {
  if (!state.membership) return unchanged(state);
  const learner = learnPhase2b(state.learner, message.acceptor, message.ballot, message.entries, state.membership.acceptors);
  const decision = outcomeOf(learner.chosen, state.membership.rms);
  const next = { ...state, learner };
  return decision ? onOutcome(next, decision) : unchanged(next);
}

function query(state: ParticipantState, config: RmConfig): ParticipantStep {
  if (state.rmState !== 'prepared' || !state.membership) return unchanged(state);
  const message: PaxosCommitMessage = { type: 'Query', txnId: state.txnId, rm: state.rm, membership: state.membership };
  // Every replica hears it: whichever leads now (or knows the outcome) answers.
  return { state, effects: [...state.membership.acceptors.map((a) => send(a, message)), setTimer('query', config.queryIntervalMs)] };
}

export function step(state: ParticipantState, input: ParticipantInput, config: RmConfig): ParticipantStep {
  switch (input.type) {
    case 'prepare':
      return onPrepare(state, input.message, config);
    case 'localVote':
      return onLocalVote(state, input.vote, input.reason, config);
    case 'outcome':
      return onOutcome(state, input.decision);
    case 'phase2b':
      return onPhase2b(state, input.message);
    case 'timer':
    case 'recover':
      return query(state, config);
    default:
      return assertNever(input, 'participant input');
  }
}
