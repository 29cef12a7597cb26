/**
 * Named failpoints (after etcd's gofail) for the fault tests: when a configured point is
 * reached, the process announces it on stderr and stops making progress on that path, so a
 * test can kill it with SIGKILL at exactly that protocol step. Unset in production.
 */
export const FAILPOINTS = [
  'after-prepare-sent',
  'after-decision-logged',
  // Paxos Commit leader: after its PREPAREs left; after it learned from one phase 2b but has
  // not decided; after it logged the decision but before any outcome left.
  'leader-after-prepare-sent',
  'leader-after-some-phase2b',
  'leader-after-decision',
  // 2pc and 3pc: after the API logged the transaction, before any PREPARE left; after the
  // decision reached only the first participant.
  'after-transaction-logged',
  'after-some-decisions-sent',
  // 2pc and 3pc: after the first vote (not all of them) was taken.
  'after-votes',
  // 3pc: after PreCommit was logged, before any left; after PreCommit reached only the first
  // participant.
  'after-precommit-logged',
  'after-some-precommits-sent',
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export class Failpoints {
  private readonly enabled: ReadonlySet<Failpoint>;

  constructor(enabled: readonly Failpoint[]) {
    this.enabled = new Set(enabled);
  }

  /** Whether `point` is on; a driver that must stop halfway through a batch asks first. */
  isEnabled(point: Failpoint): boolean {
    return this.enabled.has(point);
  }

  /** Resolves at once when `point` is off; otherwise never resolves. */
  async reach(point: Failpoint, detail: string): Promise<void> {
    if (!this.enabled.has(point)) return;
    process.stderr.write(`FAILPOINT ${point} ${detail}\n`);
    await new Promise<never>(() => undefined);
  }
}
