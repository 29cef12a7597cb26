/**
 * Named failpoints (after etcd's gofail) for the fault tests: when a configured point is
 * reached, the process announces it on stderr and stops making progress on that path, so a
 * test can kill it with SIGKILL at exactly that protocol step. Unset in production.
 */
export const FAILPOINTS = ['after-prepare-sent', 'after-decision-logged'] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export class Failpoints {
  private readonly enabled: ReadonlySet<Failpoint>;

  constructor(enabled: readonly Failpoint[]) {
    this.enabled = new Set(enabled);
  }

  /** Resolves at once when `point` is off; otherwise never resolves. */
  async reach(point: Failpoint, detail: string): Promise<void> {
    if (!this.enabled.has(point)) return;
    process.stderr.write(`FAILPOINT ${point} ${detail}\n`);
    await new Promise<never>(() => undefined);
  }
}
