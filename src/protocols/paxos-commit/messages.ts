/**
 * Messages and ballots of Paxos Commit, after Gray and Lamport 2006 section 4 and
 * PaxosCommit.tla. There is one Paxos instance per RM, named by the RM; ballot 0 of an
 * instance belongs to its RM, every higher ballot to one leader, so no two proposers ever
 * propose in the same ballot (the premise of Paxos safety).
 */
import { Decision } from '../common/effects';

export type Value = 'Prepared' | 'Aborted';

/**
 * A ballot: `round` 0 with an empty `replica` is the RM's own ballot; a leader uses rounds
 * from 1 upwards paired with its replica id, which makes ballots unique per leader and
 * totally ordered (round first, then replica id).
 */
export interface Ballot {
  readonly round: number;
  readonly replica: string;
}

export const BALLOT_ZERO: Ballot = { round: 0, replica: '' };

export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.replica === b.replica) return 0;
  return a.replica < b.replica ? -1 : 1;
}

export const ballotKey = (b: Ballot): string => `${b.round}.${b.replica}`;
export const isBallotZero = (b: Ballot): boolean => b.round === 0;

/** What the RMs need to know to run their instance and to learn without a leader. */
export interface Membership {
  readonly rms: readonly string[];
  readonly acceptors: readonly string[];
}

/** One instance's entry in a (possibly bundled) phase 2a or 2b message. */
export interface InstanceValue {
  readonly rm: string;
  readonly value: Value;
}

/** What an acceptor reports in phase 1b for one instance: its maxVBal and maxVal. */
export interface InstanceReport {
  readonly rm: string;
  readonly maxVBal?: Ballot;
  readonly maxVal?: Value;
}

export type PaxosCommitMessage =
  /** Leader to RM: prepare, and propose your vote in ballot 0 of your instance. */
  | { readonly type: 'Prepare'; readonly txnId: string; readonly membership: Membership; readonly leader: string }
  /**
   * Proposer to acceptors: accept these values in `ballot`. RMs send ballot 0 and name the
   * leader that should hear the phase 2b; a leader's own ballot names it already.
   */
  | {
      readonly type: 'phase2a';
      readonly txnId: string;
      readonly membership: Membership;
      readonly ballot: Ballot;
      readonly leader: string;
      readonly entries: readonly InstanceValue[];
    }
  /** Acceptor to learners: I accepted these values in `ballot`. Bundled across instances. */
  | {
      readonly type: 'phase2b';
      readonly txnId: string;
      readonly acceptor: string;
      readonly ballot: Ballot;
      readonly entries: readonly InstanceValue[];
    }
  /** Leader to acceptors: promise `ballot` for these instances and tell me what you accepted. */
  | {
      readonly type: 'phase1a';
      readonly txnId: string;
      readonly membership: Membership;
      readonly ballot: Ballot;
      readonly instances: readonly string[];
    }
  /**
   * Acceptor to leader. `promised` false means the acceptor already promised `maxBal`, which
   * is higher; the leader then picks a higher round rather than waiting for a timeout.
   */
  | {
      readonly type: 'phase1b';
      readonly txnId: string;
      readonly acceptor: string;
      readonly ballot: Ballot;
      readonly promised: boolean;
      readonly maxBal: Ballot;
      readonly reports: readonly InstanceReport[];
    }
  /** Leader to RM: the outcome. */
  | { readonly type: 'Outcome'; readonly txnId: string; readonly decision: Decision }
  /** RM to every replica: I am prepared and have not heard the outcome. */
  | { readonly type: 'Query'; readonly txnId: string; readonly rm: string; readonly membership: Membership };

export type MessageOf<T extends PaxosCommitMessage['type']> = Extract<PaxosCommitMessage, { type: T }>;
