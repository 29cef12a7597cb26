/**
 * Three-phase commit, original coordinator, after Skeen 1981 and Bernstein, Hadzilacos and
 * Goodman 1987 section 7.5: CanCommit, then PreCommit once every RM voted Prepared, then
 * DoCommit once every RM acknowledged PreCommit or is known to have failed. It keeps
 * `validity` (PreCommit only after unanimous Prepared) and `decisionStable` (the decision is
 * logged before anyone hears it); agreement with recovery coordinators rests on the failure
 * detector behind `ackTimeout` being accurate, which is 3PC's synchrony assumption.
 */
import { assertNever } from '../common/assert';
import { Decide, Decision, Persist, Send, SetTimer, StepResult, decide, persist, send, setTimer } from '../common/effects';
import { CoordinatorToRm, EPOCH_ZERO, TM, ThreePhaseMessage, Vote } from './messages';

export type TmState = 'init' | 'waitingVotes' | 'precommitting' | 'committed' | 'aborted' | 'inDoubt';

export interface TmConfig {
  readonly voteTimeoutMs: number;
  /** When it fires, the driver's failure detector vouches that every silent RM has crashed. */
  readonly ackTimeoutMs: number;
  readonly resendIntervalMs: number;
}

export interface CoordinatorState {
  readonly txnId: string;
  readonly rms: readonly string[];
  readonly tmState: TmState;
  readonly tmPrepared: readonly string[];
  readonly preCommitAcked: readonly string[];
  readonly acked: readonly string[];
}

export type TmTimer = 'voteTimeout' | 'ackTimeout' | 'resend';

export type CoordinatorInput =
  | { readonly type: 'begin' }
  | { readonly type: 'vote'; readonly rm: string; readonly vote: Vote }
  | { readonly type: 'preCommitAck'; readonly rm: string }
  | { readonly type: 'ack'; readonly rm: string }
  | { readonly type: 'learned'; readonly decision: Decision }
  | { readonly type: 'decisionReq'; readonly from: string }
  | { readonly type: 'timer'; readonly timer: TmTimer }
  | { readonly type: 'recover' };

export type TmRecord =
  | { readonly type: 'precommit' }
  | { readonly type: 'decision'; readonly decision: Decision };

export type CoordinatorEffect = Persist<TmRecord> | Send<ThreePhaseMessage> | SetTimer<TmTimer> | Decide;
export type CoordinatorStep = StepResult<CoordinatorState, CoordinatorEffect>;

export function initialCoordinatorState(txnId: string, rms: readonly string[]): CoordinatorState {
  return { txnId, rms, tmState: 'init', tmPrepared: [], preCommitAcked: [], acked: [] };
}

/**
 * After a crash: a logged decision is resent; a logged PreCommit without a decision leaves the
 * coordinator in doubt (the participants may already have terminated either way); with nothing
 * logged no RM can be pre-committed, so the transaction is aborted.
 */
export function restoreCoordinator(txnId: string, rms: readonly string[], records: readonly TmRecord[]): CoordinatorState {
  const state = initialCoordinatorState(txnId, rms);
  const decision = records.find((r): r is Extract<TmRecord, { type: 'decision' }> => r.type === 'decision');
  if (decision) return { ...state, tmState: decision.decision === 'COMMIT' ? 'committed' : 'aborted' };
  if (records.some((r) => r.type === 'precommit')) return { ...state, tmState: 'inDoubt' };
  return { ...state, tmState: 'waitingVotes' };
}

export function decisionOf(state: CoordinatorState): Decision | undefined {
  if (state.tmState === 'committed') return 'COMMIT';
  if (state.tmState === 'aborted') return 'ABORT';
  return undefined;
}

const unchanged = (state: CoordinatorState): CoordinatorStep => ({ state, effects: [] });

function decisionMessage(state: CoordinatorState): CoordinatorToRm {
  return decisionOf(state) === 'COMMIT'
    ? { type: 'DoCommit', txnId: state.txnId, from: TM }
    : { type: 'Abort', txnId: state.txnId, from: TM };
}

function sendDecision(state: CoordinatorState, config: TmConfig): CoordinatorEffect[] {
  const unacked = state.rms.filter((rm) => !state.acked.includes(rm));
  if (unacked.length === 0) return [];
  return [...unacked.map((rm) => send(rm, decisionMessage(state))), setTimer('resend', config.resendIntervalMs)];
}

function makeDecision(state: CoordinatorState, decision: Decision, config: TmConfig): CoordinatorStep {
  const next: CoordinatorState = { ...state, tmState: decision === 'COMMIT' ? 'committed' : 'aborted' };
  return { state: next, effects: [persist({ type: 'decision', decision }), decide(decision), ...sendDecision(next, config)] };
}

function onVote(state: CoordinatorState, rm: string, vote: Vote, config: TmConfig): CoordinatorStep {
  if (!state.rms.includes(rm)) return unchanged(state);
  if (decisionOf(state)) return state.acked.includes(rm) ? unchanged(state) : { state, effects: [send(rm, decisionMessage(state))] };
  if (state.tmState !== 'waitingVotes') return unchanged(state);
  if (vote === 'Aborted') return makeDecision(state, 'ABORT', config);
  if (state.tmPrepared.includes(rm)) return unchanged(state);
  const next = { ...state, tmPrepared: [...state.tmPrepared, rm] };
  if (next.tmPrepared.length < state.rms.length) return unchanged(next);
  const preCommit: CoordinatorToRm = { type: 'PreCommit', txnId: state.txnId, epoch: EPOCH_ZERO, from: TM };
  return {
    state: { ...next, tmState: 'precommitting' },
    // Logged first: a restarted coordinator must know it may no longer abort on its own.
    effects: [persist({ type: 'precommit' }), ...state.rms.map((r) => send(r, preCommit)), setTimer('ackTimeout', config.ackTimeoutMs)],
  };
}

function onPreCommitAck(state: CoordinatorState, rm: string, config: TmConfig): CoordinatorStep {
  if (state.tmState !== 'precommitting' || !state.rms.includes(rm) || state.preCommitAcked.includes(rm)) return unchanged(state);
  const next = { ...state, preCommitAcked: [...state.preCommitAcked, rm] };
  return next.preCommitAcked.length === state.rms.length ? makeDecision(next, 'COMMIT', config) : unchanged(next);
}

function onTimer(state: CoordinatorState, timer: TmTimer, config: TmConfig): CoordinatorStep {
  switch (timer) {
    case 'voteTimeout':
      return state.tmState === 'waitingVotes' ? makeDecision(state, 'ABORT', config) : unchanged(state);
    case 'ackTimeout':
      // Textbook 3PC: RMs that did not acknowledge PreCommit are taken to have failed.
      return state.tmState === 'precommitting' ? makeDecision(state, 'COMMIT', config) : unchanged(state);
    case 'resend':
      if (decisionOf(state)) return { state, effects: sendDecision(state, config) };
      return state.tmState === 'inDoubt' ? askForDecision(state, config) : unchanged(state);
    default:
      return assertNever(timer, 'timer');
  }
}

function onRecover(state: CoordinatorState, config: TmConfig): CoordinatorStep {
  if (decisionOf(state)) return { state, effects: sendDecision(state, config) };
  if (state.tmState === 'waitingVotes') return makeDecision(state, 'ABORT', config);
  return askForDecision(state, config);
}

/** In doubt, the coordinator only asks: the participants' termination protocol decides without it. */
function askForDecision(state: CoordinatorState, config: TmConfig): CoordinatorStep {
  const ask: ThreePhaseMessage = { type: 'DecisionReq', txnId: state.txnId, from: TM };
  return { state, effects: [...state.rms.map((rm) => send(rm, ask)), setTimer('resend', config.resendIntervalMs)] };
}

export function step(state: CoordinatorState, input: CoordinatorInput, config: TmConfig): CoordinatorStep {
  switch (input.type) {
    case 'begin':
      if (state.tmState !== 'init') return unchanged(state);
      return {
        state: { ...state, tmState: 'waitingVotes' },
        effects: [
          ...state.rms.map((rm) => send<CoordinatorToRm>(rm, { type: 'CanCommit', txnId: state.txnId, rms: state.rms })),
          setTimer('voteTimeout', config.voteTimeoutMs),
        ],
      };
    case 'vote':
      return onVote(state, input.rm, input.vote, config);
    case 'preCommitAck':
      return onPreCommitAck(state, input.rm, config);
    case 'ack':
      // Only the transaction's own RMs count: a stray ack must not make `acked` look complete.
      if (!decisionOf(state) || !state.rms.includes(input.rm) || state.acked.includes(input.rm)) return unchanged(state);
      return unchanged({ ...state, acked: [...state.acked, input.rm] });
    case 'learned':
      // Only a coordinator in doubt learns the outcome from others.
      if (state.tmState !== 'inDoubt') return unchanged(state);
      return { state: { ...state, tmState: input.decision === 'COMMIT' ? 'committed' : 'aborted', acked: state.rms }, effects: [persist({ type: 'decision', decision: input.decision }), decide(input.decision)] };
    case 'decisionReq':
      return decisionOf(state) ? { state, effects: [send(input.from, decisionMessage(state))] } : unchanged(state);
    case 'timer':
      return onTimer(state, input.timer, config);
    case 'recover':
      return onRecover(state, config);
    default:
      return assertNever(input, 'coordinator input');
  }
}
