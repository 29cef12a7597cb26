/** Runs tasks one at a time per key, in arrival order; different keys run concurrently. */
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
}
