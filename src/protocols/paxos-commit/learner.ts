/**
 * Learning in Paxos Commit (Gray and Lamport 2006 section 4.2; the Decide action of
 * PaxosCommit.tla): a value is chosen in an instance once a majority of acceptors sent phase
 * 2b for it in the same ballot, and the transaction commits iff every instance chose Prepared.
 * Every learner reads the same chosen values, which is why leaders and RMs agree
 * (`tcConsistent`); RMs learn here too in the paper's "Faster Paxos Commit" variant.
 */
import { Decision } from '../common/effects';
import { hasQuorum } from '../quorum/majority';
import { Ballot, InstanceValue, Value, ballotKey } from './messages';

interface BallotVotes {
  readonly value: Value;
  readonly acceptors: readonly string[];
}

export interface LearnerState {
  /** Per instance, per ballot: who accepted which value. One value per ballot, by ballot ownership. */
  readonly votes: Readonly<Record<string, Readonly<Record<string, BallotVotes>>>>;
  readonly chosen: Readonly<Record<string, Value>>;
}

export const emptyLearner: LearnerState = { votes: {}, chosen: {} };

function learnOne(state: LearnerState, acceptor: string, ballot: Ballot, entry: InstanceValue, acceptors: readonly string[]): LearnerState {
  if (state.chosen[entry.rm] !== undefined) return state;
  const key = ballotKey(ballot);
  const perBallot = state.votes[entry.rm] ?? {};
  const seen = perBallot[key] ?? { value: entry.value, acceptors: [] };
  if (seen.acceptors.includes(acceptor)) return state;
  const updated: BallotVotes = { value: seen.value, acceptors: [...seen.acceptors, acceptor] };
  const votes = { ...state.votes, [entry.rm]: { ...perBallot, [key]: updated } };
  const chosen = hasQuorum(updated.acceptors, acceptors) ? { ...state.chosen, [entry.rm]: updated.value } : state.chosen;
  return { votes, chosen };
}

/** Folds one phase 2b message into what this learner knows. */
export function learnPhase2b(
  state: LearnerState,
  acceptor: string,
  ballot: Ballot,
  entries: readonly InstanceValue[],
  acceptors: readonly string[],
): LearnerState {
  if (!acceptors.includes(acceptor)) return state;
  return entries.reduce((s, entry) => learnOne(s, acceptor, ballot, entry, acceptors), state);
}

/** COMMIT when every instance chose Prepared, ABORT as soon as any chose Aborted. */
export function outcomeOf(chosen: Readonly<Record<string, Value>>, rms: readonly string[]): Decision | undefined {
  if (rms.some((rm) => chosen[rm] === 'Aborted')) return 'ABORT';
  if (rms.every((rm) => chosen[rm] === 'Prepared')) return 'COMMIT';
  return undefined;
}
