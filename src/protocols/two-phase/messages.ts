/**
 * Messages of two-phase commit as in Lamport's TwoPhase.tla: the TM sends Prepare, Commit
 * and Abort; an RM answers with its vote (Prepared or Aborted) and acknowledges the
 * decision. `Query` lets an RM that restarted in doubt ask for an outcome it missed.
 */
export type Vote = 'Prepared' | 'Aborted';

export type TmToRm =
  | { readonly type: 'Prepare'; readonly txnId: string }
  | { readonly type: 'Commit'; readonly txnId: string }
  | { readonly type: 'Abort'; readonly txnId: string };

export type RmToTm =
  | { readonly type: 'Vote'; readonly txnId: string; readonly rm: string; readonly vote: Vote; readonly reason?: string }
  | { readonly type: 'Ack'; readonly txnId: string; readonly rm: string }
  | { readonly type: 'Query'; readonly txnId: string; readonly rm: string };

export type TwoPhaseMessage = TmToRm | RmToTm;

/** The address a coordinator uses for itself in `send` effects addressed to the TM. */
export const TM = 'tm';
