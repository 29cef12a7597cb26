/**
 * The safety properties of transaction commit, as code with names, after Gray and Lamport
 * 2006 section 2 and the TCConsistent invariant of TCommit.tla. The same functions judge the
 * unit tests, the deterministic simulator and the fault tests of all three protocols.
 * `tcConsistent` is agreement, `validity` is "commit only if every RM prepared", and
 * `decisionStable` is "an outcome, once anyone learned it, never changes".
 */
import { Decision } from './common/effects';

/**
 * An RM's state as TCommit.tla names it. 3PC's uncertain and pre-committed states and Paxos
 * Commit's prepared RM all map to `prepared`: none of them is an outcome yet.
 */
export type RmView = 'working' | 'prepared' | 'committed' | 'aborted';

export type InvariantName = 'tcConsistent' | 'validity' | 'decisionStable';

export interface Learned {
  /** Who learned it: an RM, a TM, a leader or a recovery coordinator. */
  readonly observer: string;
  readonly decision: Decision;
}

/** Everything an observer of one transaction can see at one instant. */
export interface CommitSnapshot {
  readonly rms: readonly string[];
  /** The current state of each RM; a missing RM has not heard of the transaction. */
  readonly rmState: Readonly<Record<string, RmView>>;
  /** RMs that have at some point made a Prepared vote durable. */
  readonly everPrepared: readonly string[];
  /** Every outcome announced so far (a `decide` effect), in order. */
  readonly learned: readonly Learned[];
}

export interface InvariantViolation {
  readonly invariant: InvariantName;
  readonly detail: string;
}

const rmsIn = (snapshot: CommitSnapshot, view: RmView): string[] =>
  snapshot.rms.filter((rm) => snapshot.rmState[rm] === view);

/** Agreement: no RM committed while another aborted, and no two observers learned different outcomes. */
export function tcConsistent(snapshot: CommitSnapshot): InvariantViolation | undefined {
  const committed = rmsIn(snapshot, 'committed');
  const aborted = rmsIn(snapshot, 'aborted');
  if (committed.length > 0 && aborted.length > 0) {
    return { invariant: 'tcConsistent', detail: `committed: ${committed.join(',')}; aborted: ${aborted.join(',')}` };
  }
  const outcomes = new Set(snapshot.learned.map((l) => l.decision));
  if (committed.length > 0) outcomes.add('COMMIT');
  if (aborted.length > 0) outcomes.add('ABORT');
  if (outcomes.size > 1) {
    const who = snapshot.learned.map((l) => `${l.observer}=${l.decision}`).join(' ');
    return { invariant: 'tcConsistent', detail: `observers disagree: ${who}` };
  }
  return undefined;
}

/** Validity: an RM commits, or anyone learns COMMIT, only after every RM has been prepared. */
export function validity(snapshot: CommitSnapshot): InvariantViolation | undefined {
  const committed = rmsIn(snapshot, 'committed').length > 0 || snapshot.learned.some((l) => l.decision === 'COMMIT');
  if (!committed) return undefined;
  const unprepared = snapshot.rms.filter((rm) => !snapshot.everPrepared.includes(rm));
  if (unprepared.length === 0) return undefined;
  return { invariant: 'validity', detail: `COMMIT although ${unprepared.join(',')} never prepared` };
}

/**
 * Stability: between two snapshots of one transaction no RM leaves committed or aborted, and
 * no observer announces an outcome different from one it announced before.
 */
export function decisionStable(before: CommitSnapshot, after: CommitSnapshot): InvariantViolation | undefined {
  for (const rm of after.rms) {
    const was = before.rmState[rm];
    const is = after.rmState[rm];
    if ((was === 'committed' || was === 'aborted') && is !== was) {
      return { invariant: 'decisionStable', detail: `${rm} went from ${was} to ${is ?? 'nothing'}` };
    }
  }
  const first = new Map<string, Decision>();
  for (const { observer, decision } of after.learned) {
    const earlier = first.get(observer);
    if (earlier === undefined) first.set(observer, decision);
    else if (earlier !== decision) {
      return { invariant: 'decisionStable', detail: `${observer} announced ${earlier} and then ${decision}` };
    }
  }
  return undefined;
}

/** Every invariant, in a fixed order; the first violation found, if any. */
export function checkCommitInvariants(before: CommitSnapshot, after: CommitSnapshot): InvariantViolation | undefined {
  return tcConsistent(after) ?? validity(after) ?? decisionStable(before, after);
}
