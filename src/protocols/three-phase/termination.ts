/**
 * The termination protocol of three-phase commit (Skeen 1981; Bernstein, Hadzilacos and
 * Goodman 1987 section 7.5.2), run by whichever participant the election picks as recovery
 * coordinator. It collects the states of the participants that have not failed and decides
 * by the textbook rules: any committed -> commit; any aborted -> abort; any pre-committed ->
 * pre-commit the uncertain ones, then commit; all uncertain -> abort. Under an accurate
 * failure detector this keeps `tcConsistent`; under a partition it does not (docs/protocols.md).
 */
import { Decision, persist, send, setTimer } from '../common/effects';
import { Epoch, ReportedState, ThreePhaseMessage, compareEpochs } from './messages';
import type { ParticipantState, ParticipantStep, RmConfig } from './participant';
import { others, reachOutcome, reportedState } from './participant';

export type TerminationRule = 'commit' | 'abort' | 'precommit';

/** The textbook decision rule over the states collected; `recovering` RMs do not count. */
export function terminationRule(states: readonly ReportedState[]): TerminationRule {
  if (states.includes('committed')) return 'commit';
  if (states.includes('aborted')) return 'abort';
  if (states.includes('precommitted')) return 'precommit';
  return 'abort';
}

/** Becomes recovery coordinator in an epoch above every epoch this RM has seen. */
export function startTermination(state: ParticipantState, config: RmConfig, above: Epoch = state.epoch): ParticipantStep {
  const base = compareEpochs(above, state.epoch) > 0 ? above : state.epoch;
  const epoch: Epoch = { round: base.round + 1, rm: state.rm };
  const awaiting = others(state);
  const next: ParticipantState = {
    ...state,
    epoch,
    coordinator: state.rm,
    termination: { epoch, phase: 'collecting', reports: { [state.rm]: reportedState(state) }, awaiting },
  };
  const stateReq: ThreePhaseMessage = { type: 'StateReq', txnId: state.txnId, epoch, from: state.rm };
  return { state: next, effects: [...awaiting.map((rm) => send(rm, stateReq)), setTimer('collect', config.collectTimeoutMs)] };
}

function finish(state: ParticipantState, decision: Decision): ParticipantStep {
  return reachOutcome(state, decision, others(state));
}

/** Applies the rule to what was collected; missing RMs have failed, by the detector's word. */
function conclude(state: ParticipantState, config: RmConfig): ParticipantStep {
  const termination = state.termination;
  if (!termination) return { state, effects: [] };
  const rule = terminationRule(Object.values(termination.reports));
  if (rule !== 'precommit') return finish(state, rule === 'commit' ? 'COMMIT' : 'ABORT');
  const uncertain = Object.keys(termination.reports).filter((rm) => rm !== state.rm && termination.reports[rm] === 'uncertain');
  const ownRecord = state.rmState === 'uncertain' ? [persist({ type: 'precommitted' as const })] : [];
  const next: ParticipantState = {
    ...state,
    rmState: 'precommitted',
    termination: { ...termination, phase: 'precommitting', awaiting: uncertain },
  };
  if (uncertain.length === 0) {
    const done = finish(next, 'COMMIT');
    return { state: done.state, effects: [...ownRecord, ...done.effects] };
  }
  const preCommit: ThreePhaseMessage = { type: 'PreCommit', txnId: state.txnId, epoch: termination.epoch, from: state.rm };
  return {
    state: next,
    effects: [...ownRecord, ...uncertain.map((rm) => send(rm, preCommit)), setTimer('collect', config.collectTimeoutMs)],
  };
}

export function onStateReport(
  state: ParticipantState,
  report: { readonly rm: string; readonly epoch: Epoch; readonly state: ReportedState; readonly newerEpoch?: Epoch },
  config: RmConfig,
): ParticipantStep {
  const termination = state.termination;
  if (!termination || termination.phase !== 'collecting' || compareEpochs(report.epoch, termination.epoch) !== 0) {
    return { state, effects: [] };
  }
  if (report.newerEpoch) {
    // Someone already follows a later epoch: start over above it rather than wait forever.
    return startTermination({ ...state, termination: undefined }, config, report.newerEpoch);
  }
  if (!termination.awaiting.includes(report.rm)) return { state, effects: [] };
  const next: ParticipantState = {
    ...state,
    termination: {
      ...termination,
      reports: { ...termination.reports, [report.rm]: report.state },
      awaiting: termination.awaiting.filter((rm) => rm !== report.rm),
    },
  };
  return next.termination?.awaiting.length === 0 ? conclude(next, config) : { state: next, effects: [] };
}

export function onPreCommitAck(state: ParticipantState, rm: string, epoch: Epoch): ParticipantStep {
  const termination = state.termination;
  if (!termination || termination.phase !== 'precommitting' || compareEpochs(epoch, termination.epoch) !== 0) {
    return { state, effects: [] };
  }
  const awaiting = termination.awaiting.filter((r) => r !== rm);
  if (awaiting.length > 0) return { state: { ...state, termination: { ...termination, awaiting } }, effects: [] };
  return finish(state, 'COMMIT');
}

export function onCollectTimeout(state: ParticipantState, config: RmConfig): ParticipantStep {
  const termination = state.termination;
  if (!termination) return { state, effects: [] };
  // Whoever has not answered has failed; failed RMs learn the outcome when they recover.
  return termination.phase === 'collecting' ? conclude(state, config) : finish(state, 'COMMIT');
}
