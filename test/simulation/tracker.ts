/**
 * Per-transaction bookkeeping for the invariants: what each RM made durable, what every
 * observer announced, who failed. The named invariants of src/protocols/invariants.ts judge
 * a snapshot taken before and after every step that touched the transaction.
 */
import { Decision } from '../../src/protocols/common/effects';
import { CommitSnapshot, InvariantName, Learned, RmView, checkCommitInvariants } from '../../src/protocols/invariants';

/** `termination` is the liveness check: a transaction the protocol promised to finish did not. */
export type ViolationName = InvariantName | 'termination';

export interface Violation {
  readonly invariant: ViolationName;
  readonly txnId: string;
  readonly detail: string;
  readonly step: number;
  readonly at: number;
}

export class TxnTrack {
  readonly rmState: Record<string, RmView> = {};
  readonly everPrepared = new Set<string>();
  readonly learned: Learned[] = [];
  /** Nodes that crashed after this transaction began. */
  readonly failed = new Set<string>();
  violated = false;
  /** The node that took the client's request. */
  owner?: string;
  /** Message depth at which the last RM learned the outcome (for the cost table). */
  outcomeDepth = 0;

  constructor(
    readonly txnId: string,
    readonly rms: readonly string[],
    readonly startedAt: number,
  ) {}

  snapshot(): CommitSnapshot {
    return { rms: this.rms, rmState: { ...this.rmState }, everPrepared: [...this.everPrepared], learned: [...this.learned] };
  }

  record(rm: string, kind: 'prepared' | 'committed' | 'aborted'): void {
    if (kind === 'prepared') {
      this.everPrepared.add(rm);
      if (this.rmState[rm] === undefined || this.rmState[rm] === 'working') this.rmState[rm] = 'prepared';
    } else {
      this.rmState[rm] = kind;
    }
  }

  learn(observer: string, decision: Decision): void {
    this.learned.push({ observer, decision });
  }

  outcome(): Decision | undefined {
    const first = this.learned[0]?.decision;
    if (first) return first;
    if (Object.values(this.rmState).includes('committed')) return 'COMMIT';
    if (Object.values(this.rmState).includes('aborted')) return 'ABORT';
    return undefined;
  }

  /** Runs every named invariant over the change; returns the first violation. */
  check(before: CommitSnapshot): { invariant: InvariantName; detail: string } | undefined {
    return checkCommitInvariants(before, this.snapshot());
  }

  /** Every RM that ever held state has an outcome; with `everyRm`, every RM of the transaction. */
  finished(hasState: (rm: string) => boolean, everyRm: boolean): boolean {
    return this.rms.every((rm) => {
      const view = this.rmState[rm];
      if (view === 'committed' || view === 'aborted') return true;
      return !everyRm && !hasState(rm);
    });
  }
}
