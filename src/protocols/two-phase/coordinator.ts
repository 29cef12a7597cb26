/**
 * Two-phase commit, transaction manager role, after Lamport's TwoPhase.tla (actions TMRcvPrepared,
 * TMCommit, TMAbort) with presumed abort: only the decision must be forced to the log, and
 * a TM that finds no decision for an unfinished transaction aborts it. It keeps
 * `decisionStable` (a decision once persisted never changes) and commits only when every RM
 * is in `tmPrepared` (validity).
 */
import { assertNever } from '../common/assert';
import { Decision, Persist, Send, SetTimer, Decide, StepResult, decide, persist, send, setTimer } from '../common/effects';
import { TmToRm, Vote } from './messages';

export type TmState = 'init' | 'preparing' | 'committed' | 'aborted';

export interface TmConfig {
  readonly prepareTimeoutMs: number;
  readonly resendIntervalMs: number;
}

export interface CoordinatorState {
  readonly txnId: string;
  readonly rms: readonly string[];
  readonly tmState: TmState;
  readonly tmPrepared: readonly string[];
  readonly acked: readonly string[];
  readonly done: boolean;
}

export type TmTimer = 'prepareTimeout' | 'resend';

export type CoordinatorInput =
  | { readonly type: 'begin' }
  | { readonly type: 'vote'; readonly rm: string; readonly vote: Vote; readonly reason?: string }
  | { readonly type: 'ack'; readonly rm: string }
  | { readonly type: 'query'; readonly rm: string }
  | { readonly type: 'timer'; readonly timer: TmTimer }
  | { readonly type: 'participantDown'; readonly rm: string }
  | { readonly type: 'abortRequested'; readonly reason: string }
  | { readonly type: 'recover' };

/** What the decision log must hold. Only `decision` is forced before a send; see effects.ts. */
export type TmRecord =
  | { readonly type: 'vote'; readonly rm: string; readonly vote: Vote; readonly reason?: string }
  | { readonly type: 'decision'; readonly decision: Decision; readonly reason: string }
  | { readonly type: 'ack'; readonly rm: string }
  | { readonly type: 'complete' };

export type CoordinatorEffect = Persist<TmRecord> | Send<TmToRm> | SetTimer<TmTimer> | Decide;
export type CoordinatorStep = StepResult<CoordinatorState, CoordinatorEffect>;

export function initialCoordinatorState(txnId: string, rms: readonly string[]): CoordinatorState {
  return { txnId, rms, tmState: 'init', tmPrepared: [], acked: [], done: false };
}

export function decisionOf(state: CoordinatorState): Decision | undefined {
  if (state.tmState === 'committed') return 'COMMIT';
  if (state.tmState === 'aborted') return 'ABORT';
  return undefined;
}

/**
 * What a TM knows after a restart or a takeover: the transaction row (its participants) plus
 * the records it logged. The decision log and the simulator both rebuild a TM through this.
 */
export function restoreCoordinator(txnId: string, rms: readonly string[], records: readonly TmRecord[]): CoordinatorState {
  let state: CoordinatorState = { ...initialCoordinatorState(txnId, rms), tmState: 'preparing' };
  for (const record of records) {
    switch (record.type) {
      case 'vote':
        if (record.vote === 'Prepared' && !state.tmPrepared.includes(record.rm)) state = { ...state, tmPrepared: [...state.tmPrepared, record.rm] };
        break;
      case 'decision':
        state = { ...state, tmState: record.decision === 'COMMIT' ? 'committed' : 'aborted' };
        break;
      case 'ack':
        if (!state.acked.includes(record.rm)) state = { ...state, acked: [...state.acked, record.rm] };
        break;
      case 'complete':
        state = { ...state, done: true };
        break;
      default:
        assertNever(record, 'record');
    }
  }
  return state;
}

const unchanged = (state: CoordinatorState): CoordinatorStep => ({ state, effects: [] });

function decisionMessage(state: CoordinatorState): TmToRm {
  return state.tmState === 'committed'
    ? { type: 'Commit', txnId: state.txnId }
    : { type: 'Abort', txnId: state.txnId };
}

function sendDecisionToUnacked(state: CoordinatorState): CoordinatorEffect[] {
  return state.rms.filter((rm) => !state.acked.includes(rm)).map((rm) => send(rm, decisionMessage(state)));
}

function makeDecision(state: CoordinatorState, decision: Decision, reason: string, config: TmConfig): CoordinatorStep {
  const next: CoordinatorState = { ...state, tmState: decision === 'COMMIT' ? 'committed' : 'aborted' };
  return {
    state: next,
    effects: [
      persist({ type: 'decision', decision, reason }),
      decide(decision),
      ...sendDecisionToUnacked(next),
      setTimer('resend', config.resendIntervalMs),
    ],
  };
}

function onVote(state: CoordinatorState, rm: string, vote: Vote, reason: string | undefined, config: TmConfig): CoordinatorStep {
  if (!state.rms.includes(rm)) return unchanged(state);
  if (state.tmState === 'committed' || state.tmState === 'aborted') {
    // A duplicate or late vote: the RM may have missed the decision, so tell it again.
    return state.acked.includes(rm) ? unchanged(state) : { state, effects: [send(rm, decisionMessage(state))] };
  }
  if (vote === 'Aborted') {
    const recorded = persist<TmRecord>({ type: 'vote', rm, vote, reason });
    const decided = makeDecision(state, 'ABORT', `${rm} voted no${reason ? `: ${reason}` : ''}`, config);
    return { state: decided.state, effects: [recorded, ...decided.effects] };
  }
  if (state.tmPrepared.includes(rm)) return unchanged(state);
  const next = { ...state, tmPrepared: [...state.tmPrepared, rm] };
  const recorded = persist<TmRecord>({ type: 'vote', rm, vote });
  if (next.tmPrepared.length < next.rms.length) return { state: next, effects: [recorded] };
  const decided = makeDecision(next, 'COMMIT', 'every participant prepared', config);
  return { state: decided.state, effects: [recorded, ...decided.effects] };
}

function onAck(state: CoordinatorState, rm: string): CoordinatorStep {
  if (state.done || decisionOf(state) === undefined || !state.rms.includes(rm) || state.acked.includes(rm)) {
    return unchanged(state);
  }
  const acked = [...state.acked, rm];
  const done = acked.length === state.rms.length;
  const effects: CoordinatorEffect[] = [persist({ type: 'ack', rm })];
  if (done) effects.push(persist({ type: 'complete' }));
  return { state: { ...state, acked, done }, effects };
}

function abortIfUndecided(state: CoordinatorState, reason: string, config: TmConfig): CoordinatorStep {
  return decisionOf(state) === undefined ? makeDecision(state, 'ABORT', reason, config) : unchanged(state);
}

/**
 * A decided transaction keeps telling the participants that have not acknowledged it; one
 * whose every acknowledgement is logged but whose completion is not (that write failed, or the
 * owner changed in between) is completed now, or nobody ever would.
 */
function finishDecided(state: CoordinatorState, config: TmConfig): CoordinatorStep {
  if (state.acked.length === state.rms.length) return { state: { ...state, done: true }, effects: [persist({ type: 'complete' })] };
  return { state, effects: [...sendDecisionToUnacked(state), setTimer('resend', config.resendIntervalMs)] };
}

function onTimer(state: CoordinatorState, timer: TmTimer, config: TmConfig): CoordinatorStep {
  switch (timer) {
    case 'prepareTimeout':
      return abortIfUndecided(state, 'prepare timed out', config);
    case 'resend':
      if (state.done || decisionOf(state) === undefined) return unchanged(state);
      return finishDecided(state, config);
    default:
      return assertNever(timer, 'timer');
  }
}

function onRecover(state: CoordinatorState, config: TmConfig): CoordinatorStep {
  if (state.done) return unchanged(state);
  // Presumed abort: a transaction without a logged decision is aborted after a crash.
  if (decisionOf(state) === undefined) return makeDecision(state, 'ABORT', 'coordinator recovered without a decision', config);
  return finishDecided(state, config);
}

export function step(state: CoordinatorState, input: CoordinatorInput, config: TmConfig): CoordinatorStep {
  switch (input.type) {
    case 'begin':
      if (state.tmState !== 'init') return unchanged(state);
      return {
        state: { ...state, tmState: 'preparing' },
        // The driver logs the transaction itself before `begin`; presumed abort needs nothing more here.
        effects: [
          ...state.rms.map((rm) => send<TmToRm>(rm, { type: 'Prepare', txnId: state.txnId })),
          setTimer('prepareTimeout', config.prepareTimeoutMs),
        ],
      };
    case 'vote':
      return onVote(state, input.rm, input.vote, input.reason, config);
    case 'ack':
      return onAck(state, input.rm);
    case 'query':
      // An undecided TM says nothing: the RM keeps waiting and the decision will reach it.
      return decisionOf(state) === undefined ? unchanged(state) : { state, effects: [send(input.rm, decisionMessage(state))] };
    case 'timer':
      return onTimer(state, input.timer, config);
    case 'participantDown':
      if (state.tmPrepared.includes(input.rm)) return unchanged(state);
      return abortIfUndecided(state, `participant ${input.rm} stopped announcing`, config);
    case 'abortRequested':
      return abortIfUndecided(state, input.reason, config);
    case 'recover':
      return onRecover(state, config);
    default:
      return assertNever(input, 'coordinator input');
  }
}
