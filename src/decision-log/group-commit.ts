/**
 * Group commit: writes that arrive while a flush is in flight wait and then share the next
 * database transaction, so a busy coordinator pays one fsync per batch instead of one per
 * message. No caller's promise resolves before the transaction holding its write commits.
 */
import { DataSource, EntityManager } from 'typeorm';

export type Work<T> = (manager: EntityManager) => Promise<T>;

interface Pending {
  readonly work: Work<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommitter {
  private queue: Pending[] = [];
  private flushing = false;
  private flushed = 0;
  private batches = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly maxBatch: number,
  ) {}

  submit<T>(work: Work<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushing) void this.flushLoop();
    });
  }

  /** Mean writes per database transaction since start; shows whether batching happens. */
  stats(): { writes: number; batches: number } {
    return { writes: this.flushed, batches: this.batches };
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.flush(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    this.batches += 1;
    this.flushed += batch.length;
    try {
      const results = await this.dataSource.transaction(async (manager) => {
        const out: unknown[] = [];
        for (const item of batch) out.push(await item.work(manager));
        return out;
      });
      batch.forEach((item, i) => item.resolve(results[i]));
    } catch (error) {
      if (batch.length === 1) {
        batch[0].reject(error);
        return;
      }
      // One bad write must not fail its neighbours: retry each alone to find it.
      for (const item of batch) await this.flush([item]);
    }
  }
}
