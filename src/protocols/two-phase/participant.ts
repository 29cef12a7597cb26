/**
 * Two-phase commit, resource manager role, after Lamport's TwoPhase.tla (RMPrepare,
 * RMChooseToAbort, RMRcvCommitMsg, RMRcvAbortMsg). An RM makes `prepared` durable before its
 * Prepared vote leaves (the persist-before-send rule in effects.ts), never changes a durable
 * outcome (`decisionStable`), and answers duplicates by repeating what it already said.
 * The application's own prepare work is an input: the driver runs the service's handler and
 * feeds its verdict back as `localVote`.
 */
import { assertNever } from '../common/assert';
import { Decide, Persist, Send, SetTimer, StepResult, decide, persist, send, setTimer } from '../common/effects';
import { RmToTm, TM, Vote } from './messages';

export type RmState = 'working' | 'preparing' | 'prepared' | 'committed' | 'aborted';

export interface RmConfig {
  readonly queryIntervalMs: number;
}

export interface ParticipantState {
  readonly txnId: string;
  readonly rm: string;
  readonly rmState: RmState;
}

export type RmTimer = 'query';

export type ParticipantInput =
  | { readonly type: 'prepare' }
  | { readonly type: 'localVote'; readonly vote: Vote; readonly reason?: string }
  | { readonly type: 'commit' }
  | { readonly type: 'abort' }
  | { readonly type: 'timer'; readonly timer: RmTimer }
  | { readonly type: 'recover' };

export type RmRecord =
  | { readonly type: 'prepared' }
  | { readonly type: 'aborted'; readonly reason?: string }
  | { readonly type: 'committed' };

/** Asks the driver to run the service's prepare handler; its verdict comes back as `localVote`. */
export interface RunPrepare {
  readonly kind: 'runPrepare';
}

export type ParticipantEffect = Persist<RmRecord> | Send<RmToTm> | SetTimer<RmTimer> | Decide | RunPrepare;
export type ParticipantStep = StepResult<ParticipantState, ParticipantEffect>;

export function initialParticipantState(txnId: string, rm: string): ParticipantState {
  return { txnId, rm, rmState: 'working' };
}

/** What an RM knows after a restart: its last durable record names its state (the SDK's log row holds just that). */
export function restoreParticipant(txnId: string, rm: string, records: readonly RmRecord[]): ParticipantState {
  const last = records[records.length - 1];
  return { ...initialParticipantState(txnId, rm), rmState: last ? last.type : 'working' };
}

const unchanged = (state: ParticipantState): ParticipantStep => ({ state, effects: [] });

type Unaddressed<M> = M extends unknown ? Omit<M, 'txnId' | 'rm'> : never;

function toTm(state: ParticipantState, message: Unaddressed<RmToTm>): Send<RmToTm> {
  return send(TM, { ...message, txnId: state.txnId, rm: state.rm } as RmToTm);
}

function onPrepare(state: ParticipantState): ParticipantStep {
  switch (state.rmState) {
    case 'working':
      return { state: { ...state, rmState: 'preparing' }, effects: [{ kind: 'runPrepare' }] };
    case 'preparing':
      return unchanged(state);
    case 'prepared':
      return { state, effects: [toTm(state, { type: 'Vote', vote: 'Prepared' })] };
    case 'aborted':
      return { state, effects: [toTm(state, { type: 'Vote', vote: 'Aborted' })] };
    case 'committed':
      return unchanged(state);
    default:
      return assertNever(state.rmState, 'rmState');
  }
}

function onLocalVote(state: ParticipantState, vote: Vote, reason: string | undefined, config: RmConfig): ParticipantStep {
  if (state.rmState !== 'preparing') return unchanged(state);
  if (vote === 'Prepared') {
    return {
      state: { ...state, rmState: 'prepared' },
      // In doubt from here on: start asking, in case the decision never reaches us.
      effects: [persist({ type: 'prepared' }), toTm(state, { type: 'Vote', vote }), setTimer('query', config.queryIntervalMs)],
    };
  }
  return {
    state: { ...state, rmState: 'aborted' },
    effects: [persist({ type: 'aborted', reason }), decide('ABORT'), toTm(state, { type: 'Vote', vote, reason })],
  };
}

function onDecision(state: ParticipantState, decision: 'commit' | 'abort'): ParticipantStep {
  const target = decision === 'commit' ? 'committed' : 'aborted';
  if (state.rmState === target) return { state, effects: [toTm(state, { type: 'Ack' })] };
  if (state.rmState === 'committed' || state.rmState === 'aborted') return unchanged(state);
  // A commit can only follow our own Prepared vote; anything else is a TM bug or a stale message.
  if (decision === 'commit' && state.rmState !== 'prepared') return unchanged(state);
  // An abort that arrives while the prepare handler still runs waits: the verdict comes first.
  if (state.rmState === 'preparing') return unchanged(state);
  return {
    state: { ...state, rmState: target },
    effects: [
      persist(decision === 'commit' ? { type: 'committed' } : { type: 'aborted' }),
      decide(decision === 'commit' ? 'COMMIT' : 'ABORT'),
      toTm(state, { type: 'Ack' }),
    ],
  };
}

export function step(state: ParticipantState, input: ParticipantInput, config: RmConfig): ParticipantStep {
  switch (input.type) {
    case 'prepare':
      return onPrepare(state);
    case 'localVote':
      return onLocalVote(state, input.vote, input.reason, config);
    case 'commit':
      return onDecision(state, 'commit');
    case 'abort':
      return onDecision(state, 'abort');
    case 'timer':
    case 'recover':
      // An RM in doubt cannot decide alone (2PC blocks); it asks the TM until it hears.
      if (state.rmState !== 'prepared') return unchanged(state);
      return { state, effects: [toTm(state, { type: 'Query' }), setTimer('query', config.queryIntervalMs)] };
    default:
      return assertNever(input, 'participant input');
  }
}
