/**
 * Group commit: writes that arrive while a flush is in flight wait and then share the next
 * database transaction, so a busy coordinator pays one fsync per batch instead of one per
 * message. No caller's promise resolves before the transaction holding its write commits.
 *
 * A batch that fails because the database went away (restart, failover, dropped socket) is
 * retried whole with a growing pause, for up to `retry.giveUpAfterMs`: a driver's step waits
 * for its forced write instead of failing and being stranded in memory. Every write is
 * idempotent (it names its row and its precondition), so repeating a batch whose COMMIT
 * may or may not have landed is safe. Any other failure is one bad write, found by retrying
 * the batch's writes one at a time.
 */
import { DataSource, EntityManager } from 'typeorm';
import { isTransientDatabaseError } from './transient-error';

export type Work<T> = (manager: EntityManager) => Promise<T>;

export interface RetryPolicy {
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
  /** How long a batch keeps trying while the database is unreachable before its writes fail. */
  readonly giveUpAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { firstDelayMs: 50, maxDelayMs: 1000, giveUpAfterMs: 120_000 };

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
  private retried = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly maxBatch: number,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  submit<T>(work: Work<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushing) void this.flushLoop();
    });
  }

  /** Mean writes per database transaction since start; shows whether batching happens. */
  stats(): { writes: number; batches: number; retries: number } {
    return { writes: this.flushed, batches: this.batches, retries: this.retried };
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
    const startedAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await this.dataSource.transaction(async (manager) => {
          const out: unknown[] = [];
          for (const item of batch) out.push(await item.work(manager));
          return out;
        });
        batch.forEach((item, i) => item.resolve(results[i]));
        return;
      } catch (error) {
        if (isTransientDatabaseError(error)) {
          const delayMs = Math.min(this.retry.maxDelayMs, this.retry.firstDelayMs * 2 ** (attempt - 1));
          if (Date.now() + delayMs - startedAt <= this.retry.giveUpAfterMs) {
            this.retried += 1;
            await new Promise((resolve) => setTimeout(resolve, delayMs));
            continue;
          }
          // The database stayed away: every write of the batch fails alike, none is to blame.
          for (const item of batch) item.reject(error);
          return;
        }
        if (batch.length === 1) {
          batch[0].reject(error);
          return;
        }
        // One bad write must not fail its neighbours: retry each alone to find it.
        for (const item of batch) await this.flush([item]);
        return;
      }
    }
  }
}
