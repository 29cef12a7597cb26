/**
 * Three-phase commit, participant role, after Skeen 1981 and Bernstein, Hadzilacos and
 * Goodman 1987 section 7.5. An RM moves working -> uncertain (voted Prepared) ->
 * precommitted -> committed, or to aborted; each state is durable before the message that
 * reveals it. When its coordinator fails it takes part in (or runs, see termination.ts) the
 * termination protocol instead of blocking. It keeps `decisionStable` and `validity`; it keeps
 * `tcConsistent` only while the failure detector is accurate, which partitions break.
 */
import { assertNever } from '../common/assert';
import { Decide, Decision, Persist, Send, SetTimer, StepResult, decide, persist, send, setTimer } from '../common/effects';
import { RunPrepare } from '../two-phase/participant';
import { EPOCH_ZERO, Epoch, ReportedState, TM, ThreePhaseMessage, Vote, compareEpochs } from './messages';
import { onCollectTimeout, onPreCommitAck, onStateReport, startTermination } from './termination';

export type RmState = 'working' | 'preparing' | 'uncertain' | 'precommitted' | 'committed' | 'aborted';

export interface RmConfig {
  /** When it fires, the driver's failure detector vouches that the coordinator followed has failed. */
  readonly terminationTimeoutMs: number;
  /** When it fires, the failure detector vouches that every RM still awaited has failed. */
  readonly collectTimeoutMs: number;
  readonly queryIntervalMs: number;
}

/** A recovery coordinator's progress through the termination protocol. */
export interface Termination {
  readonly epoch: Epoch;
  readonly phase: 'collecting' | 'precommitting';
  readonly reports: Readonly<Record<string, ReportedState>>;
  readonly awaiting: readonly string[];
}

export interface ParticipantState {
  readonly txnId: string;
  readonly rm: string;
  readonly rms: readonly string[];
  readonly rmState: RmState;
  /** The highest epoch this RM has answered; messages of lower epochs are stale. */
  readonly epoch: Epoch;
  /** Whom this RM currently waits for: the TM or a recovery coordinator. */
  readonly coordinator: string;
  /**
   * Set after a restart in doubt. Such an RM missed part of the protocol, so it never takes
   * part in a termination decision: it only asks until someone tells it the outcome.
   */
  readonly recovered: boolean;
  readonly termination?: Termination;
}

export type RmTimer = 'termination' | 'collect' | 'query';

export type ParticipantInput =
  | { readonly type: 'canCommit'; readonly rms: readonly string[] }
  | { readonly type: 'localVote'; readonly vote: Vote }
  | { readonly type: 'preCommit'; readonly epoch: Epoch; readonly from: string }
  | { readonly type: 'decision'; readonly decision: Decision; readonly from: string }
  | { readonly type: 'stateReq'; readonly epoch: Epoch; readonly from: string }
  | { readonly type: 'stateReport'; readonly rm: string; readonly epoch: Epoch; readonly state: ReportedState; readonly newerEpoch?: Epoch }
  | { readonly type: 'preCommitAck'; readonly rm: string; readonly epoch: Epoch }
  | { readonly type: 'decisionReq'; readonly from: string }
  /** The `termination` timer fired and the failure detector agrees; `operational` are the RMs it trusts. */
  | { readonly type: 'coordinatorFailed'; readonly operational: readonly string[] }
  | { readonly type: 'timer'; readonly timer: 'collect' | 'query' }
  | { readonly type: 'recover' };

export type RmRecord =
  | { readonly type: 'prepared'; readonly rms: readonly string[] }
  | { readonly type: 'precommitted' }
  | { readonly type: 'aborted' }
  | { readonly type: 'committed' };

export type ParticipantEffect = Persist<RmRecord> | Send<ThreePhaseMessage> | SetTimer<RmTimer> | Decide | RunPrepare;
export type ParticipantStep = StepResult<ParticipantState, ParticipantEffect>;

export function initialParticipantState(txnId: string, rm: string): ParticipantState {
  return { txnId, rm, rms: [], rmState: 'working', epoch: EPOCH_ZERO, coordinator: TM, recovered: false };
}

export function restoreParticipant(txnId: string, rm: string, records: readonly RmRecord[]): ParticipantState {
  let state = initialParticipantState(txnId, rm);
  for (const record of records) {
    if (record.type === 'prepared') state = { ...state, rms: record.rms, rmState: 'uncertain' };
    else state = { ...state, rmState: record.type };
  }
  return { ...state, recovered: !isDecided(state) };
}

export const isDecided = (state: ParticipantState): boolean => state.rmState === 'committed' || state.rmState === 'aborted';
export const others = (state: ParticipantState): string[] => state.rms.filter((rm) => rm !== state.rm);
const unchanged = (state: ParticipantState): ParticipantStep => ({ state, effects: [] });

export function decisionMessage(state: ParticipantState, decision: Decision): ThreePhaseMessage {
  return decision === 'COMMIT' ? { type: 'DoCommit', txnId: state.txnId, from: state.rm } : { type: 'Abort', txnId: state.txnId, from: state.rm };
}

/** Records an outcome; `tell` are the processes that hear it from this RM. */
export function reachOutcome(state: ParticipantState, decision: Decision, tell: readonly string[]): ParticipantStep {
  const rmState = decision === 'COMMIT' ? 'committed' : 'aborted';
  return {
    state: { ...state, rmState, termination: undefined },
    effects: [persist({ type: rmState }), decide(decision), ...tell.map((to) => send(to, decisionMessage(state, decision)))],
  };
}

/** The state this RM reports to a recovery coordinator. */
export function reportedState(state: ParticipantState): ReportedState {
  if (state.rmState === 'committed' || state.rmState === 'aborted') return state.rmState;
  if (state.recovered) return 'recovering';
  return state.rmState === 'precommitted' ? 'precommitted' : 'uncertain';
}

function onLocalVote(state: ParticipantState, vote: Vote, config: RmConfig): ParticipantStep {
  if (state.rmState !== 'preparing') return unchanged(state);
  const voteMessage: ThreePhaseMessage = { type: 'Vote', txnId: state.txnId, rm: state.rm, vote };
  if (vote === 'Aborted') {
    const aborted = reachOutcome(state, 'ABORT', []);
    return { state: aborted.state, effects: [...aborted.effects, send(TM, voteMessage)] };
  }
  return {
    state: { ...state, rmState: 'uncertain' },
    effects: [persist({ type: 'prepared', rms: state.rms }), send(TM, voteMessage), setTimer('termination', config.terminationTimeoutMs)],
  };
}

function onPreCommit(state: ParticipantState, epoch: Epoch, from: string, config: RmConfig): ParticipantStep {
  // A recovered RM never becomes committable: it could not have been counted by anyone.
  if (state.recovered || compareEpochs(epoch, state.epoch) < 0) return unchanged(state);
  if (state.rmState !== 'uncertain' && state.rmState !== 'precommitted') return unchanged(state);
  const ack = send<ThreePhaseMessage>(from, { type: 'PreCommitAck', txnId: state.txnId, rm: state.rm, epoch });
  const next: ParticipantState = { ...state, rmState: 'precommitted', epoch, coordinator: from };
  const record = state.rmState === 'uncertain' ? [persist<RmRecord>({ type: 'precommitted' })] : [];
  return { state: next, effects: [...record, ack, setTimer('termination', config.terminationTimeoutMs)] };
}

function onDecision(state: ParticipantState, decision: Decision, from: string): ParticipantStep {
  const ack = send<ThreePhaseMessage>(from, { type: 'Ack', txnId: state.txnId, rm: state.rm });
  if (isDecided(state)) return { state, effects: (state.rmState === 'committed') === (decision === 'COMMIT') ? [ack] : [] };
  // COMMIT needs this RM's own Prepared vote; a prepare handler still running answers first.
  if (state.rmState === 'preparing' || (decision === 'COMMIT' && state.rmState === 'working')) return unchanged(state);
  const reached = reachOutcome(state, decision, []);
  return { state: reached.state, effects: [...reached.effects, ack] };
}

function onStateReq(state: ParticipantState, epoch: Epoch, from: string, config: RmConfig): ParticipantStep {
  const report = (s: ParticipantState, newerEpoch?: Epoch): ParticipantEffect =>
    send(from, { type: 'StateReport', txnId: s.txnId, rm: s.rm, epoch, state: reportedState(s), newerEpoch });
  if (compareEpochs(epoch, state.epoch) < 0 && !isDecided(state)) return { state, effects: [report(state, state.epoch)] };
  if (state.rmState === 'working' || state.rmState === 'preparing') {
    // Not yet voted: this RM may still abort on its own, and that settles the transaction.
    const aborted = reachOutcome(state, 'ABORT', []);
    return { state: aborted.state, effects: [...aborted.effects, report(aborted.state)] };
  }
  if (isDecided(state) || state.recovered) return { state, effects: [report(state)] };
  const next: ParticipantState = { ...state, epoch, coordinator: from, termination: undefined };
  return { state: next, effects: [report(next), setTimer('termination', config.terminationTimeoutMs)] };
}

function onCoordinatorFailed(state: ParticipantState, operational: readonly string[], config: RmConfig): ParticipantStep {
  if (isDecided(state) || state.recovered || state.termination) return unchanged(state);
  if (state.rmState === 'working' || state.rmState === 'preparing') return reachOutcome(state, 'ABORT', others(state));
  // The election: the first RM, in the transaction's order, that the failure detector trusts.
  const candidate = state.rms.find((rm) => rm === state.rm || operational.includes(rm)) ?? state.rm;
  if (candidate === state.rm) return startTermination(state, config);
  const ask: ThreePhaseMessage = { type: 'DecisionReq', txnId: state.txnId, from: state.rm };
  return { state: { ...state, coordinator: candidate }, effects: [send(candidate, ask), setTimer('termination', config.terminationTimeoutMs)] };
}

function onDecisionReq(state: ParticipantState, from: string): ParticipantStep {
  // An RM that has not voted can still abort on its own, and then the answer is known.
  if (state.rmState === 'working' || state.rmState === 'preparing') return reachOutcome(state, 'ABORT', [from]);
  if (!isDecided(state)) return unchanged(state);
  return { state, effects: [send(from, decisionMessage(state, state.rmState === 'committed' ? 'COMMIT' : 'ABORT'))] };
}

function askEveryone(state: ParticipantState, config: RmConfig): ParticipantStep {
  if (!state.recovered || isDecided(state)) return unchanged(state);
  const ask: ThreePhaseMessage = { type: 'DecisionReq', txnId: state.txnId, from: state.rm };
  return { state, effects: [...[TM, ...others(state)].map((to) => send(to, ask)), setTimer('query', config.queryIntervalMs)] };
}

export function step(state: ParticipantState, input: ParticipantInput, config: RmConfig): ParticipantStep {
  switch (input.type) {
    case 'canCommit':
      if (state.rmState === 'working') return { state: { ...state, rms: input.rms, rmState: 'preparing' }, effects: [{ kind: 'runPrepare' }] };
      if (state.rmState === 'preparing') return unchanged(state);
      // A repeated CanCommit: repeat the vote this RM already made.
      return { state, effects: [send(TM, { type: 'Vote', txnId: state.txnId, rm: state.rm, vote: state.rmState === 'aborted' ? 'Aborted' : 'Prepared' })] };
    case 'localVote':
      return onLocalVote(state, input.vote, config);
    case 'preCommit':
      return onPreCommit(state, input.epoch, input.from, config);
    case 'decision':
      return onDecision(state, input.decision, input.from);
    case 'stateReq':
      return onStateReq(state, input.epoch, input.from, config);
    case 'stateReport':
      return onStateReport(state, input, config);
    case 'preCommitAck':
      return onPreCommitAck(state, input.rm, input.epoch);
    case 'decisionReq':
      return onDecisionReq(state, input.from);
    case 'coordinatorFailed':
      return onCoordinatorFailed(state, input.operational, config);
    case 'timer':
      return input.timer === 'collect' ? onCollectTimeout(state, config) : askEveryone(state, config);
    case 'recover':
      return askEveryone(state, config);
    default:
      return assertNever(input, 'participant input');
  }
}
