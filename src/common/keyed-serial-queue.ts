/**
 * Runs tasks one at a time per key (a transaction id), in arrival order; different keys run
 * concurrently. Both the coordinator driver and the participant SDK feed their protocol cores
 * through one of these, so a core never sees two inputs of one transaction at once.
 */
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(task);
    this.tails.set(key, result);
    const cleanup = (): void => {
      if (this.tails.get(key) === result) this.tails.delete(key);
    };
    result.then(cleanup, cleanup);
    return result;
  }

  /** Resolves once every task queued so far has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.allSettled([...this.tails.values()]);
  }
}
