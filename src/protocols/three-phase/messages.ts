/**
 * Messages of three-phase commit after Skeen 1981 ("Nonblocking Commit Protocols") and the
 * centralized 3PC with its termination protocol in Bernstein, Hadzilacos and Goodman 1987
 * section 7.5: CanCommit / vote, PreCommit / ack, DoCommit / ack, and the termination
 * protocol's StateReq / StateReport run by a recovery coordinator. Every coordinator message
 * carries an epoch so that a participant can ignore a superseded coordinator.
 */
import { Vote } from '../two-phase/messages';

export type { Vote };

/**
 * Who coordinates: round 0 with an empty `rm` is the original coordinator; a recovery
 * coordinator takes the next round paired with its own RM id, so epochs are unique and ordered.
 */
export interface Epoch {
  readonly round: number;
  readonly rm: string;
}

export const EPOCH_ZERO: Epoch = { round: 0, rm: '' };

export function compareEpochs(a: Epoch, b: Epoch): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.rm === b.rm) return 0;
  return a.rm < b.rm ? -1 : 1;
}

/** The state a participant reports to a recovery coordinator. */
export type ReportedState = 'aborted' | 'uncertain' | 'precommitted' | 'committed' | 'recovering';

export type CoordinatorToRm =
  | { readonly type: 'CanCommit'; readonly txnId: string; readonly rms: readonly string[] }
  | { readonly type: 'PreCommit'; readonly txnId: string; readonly epoch: Epoch; readonly from: string }
  | { readonly type: 'DoCommit'; readonly txnId: string; readonly from: string }
  | { readonly type: 'Abort'; readonly txnId: string; readonly from: string }
  | { readonly type: 'StateReq'; readonly txnId: string; readonly epoch: Epoch; readonly from: string };

export type RmToCoordinator =
  | { readonly type: 'Vote'; readonly txnId: string; readonly rm: string; readonly vote: Vote }
  | { readonly type: 'PreCommitAck'; readonly txnId: string; readonly rm: string; readonly epoch: Epoch }
  | { readonly type: 'Ack'; readonly txnId: string; readonly rm: string }
  /**
   * `newerEpoch` set means the RM already follows a higher epoch and reports nothing: the
   * recovery coordinator must start again above it.
   */
  | {
      readonly type: 'StateReport';
      readonly txnId: string;
      readonly rm: string;
      readonly epoch: Epoch;
      readonly state: ReportedState;
      readonly newerEpoch?: Epoch;
    }
  /** A process that restarted in doubt asks everyone; whoever knows answers DoCommit or Abort. */
  | { readonly type: 'DecisionReq'; readonly txnId: string; readonly from: string };

export type ThreePhaseMessage = CoordinatorToRm | RmToCoordinator;

/** The original coordinator's address. */
export const TM = 'tm';
