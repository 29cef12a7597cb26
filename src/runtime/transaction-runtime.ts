/**
 * The one engine under every role that runs a protocol core (etcd-raft's Ready/Advance, one
 * step at a time): inputs of a transaction are fed one at a time through a serial queue
 * while different transactions run concurrently; a role's `run` carries out the step's
 * persist effects and resolves only once they are durable, and only then does the runtime
 * send the step's messages and arm its timers. So the durability rule of
 * protocols/common/effects.ts is kept here, once, for every driver.
 *
 * Failure policy, the same for every role:
 * - a step that throws is retried with the same input after a jittered exponential backoff,
 *   until it succeeds or the transaction leaves this process; nothing is only logged;
 * - a role that finds its input bad throws `BadInput`: the input is not retried and the
 *   caller (the Kafka edge) dead-letters the message with the reason;
 * - a send that fails is retried with backoff until the transport takes it (messages are
 *   at-least-once and every handler is idempotent, so a late copy is harmless).
 * `submit` resolves after the first attempt, successful or not, so a consumer that awaits it
 * commits its offset once the step is durable but never waits on a failing one.
 */
import { KeyedSerialQueue } from '../common/keyed-serial-queue';
import { Clock, RuntimeLogger, Timer, Transport, systemClock } from './ports';

/** A timer a step arms; a later timer of the same name replaces it. */
export interface ArmTimer<I> {
  readonly name: string;
  readonly afterMs: number;
  readonly input: I;
}

/** What a committed step leaves for the runtime to do. */
export interface StepOutcome<I, M> {
  readonly messages?: readonly M[];
  readonly timers?: readonly ArmTimer<I>[];
  readonly cancelTimers?: readonly string[];
  /** The transaction leaves this process once the step's messages are out. */
  readonly finished?: boolean;
  /** Runs the send inside a context the role chooses (a trace span, say). */
  readonly around?: (send: () => Promise<void>) => Promise<void>;
  /** Runs after the first send attempt (fault-test failpoints, events). */
  readonly afterSend?: () => Promise<void>;
}

export interface Role<T, I extends { readonly type: string }, M> {
  /**
   * Runs one input through the core and persists what it must, resolving once that is
   * durable. Returns undefined when there is nothing more to do.
   */
  run(txn: T, input: I, txnId: string): Promise<StepOutcome<I, M> | undefined>;
  /** Restores a transaction not in memory from its log; undefined means there is nothing to run. */
  load?(txnId: string, input: I): Promise<T | undefined>;
  /** Called when a transaction leaves this process. */
  onFinish?(txn: T, txnId: string): void;
}

/** The input itself is wrong: retrying cannot help, and the message that carried it is dead-lettered. */
export class BadInput extends Error {}

export type SubmitResult = { readonly status: 'done' | 'retrying' | 'ignored' } | { readonly status: 'bad'; readonly reason: string };

export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export interface RuntimeOptions<M> {
  readonly name: string;
  readonly transport: Transport<M>;
  readonly logger: RuntimeLogger;
  readonly clock?: Clock;
  readonly retry?: RetryPolicy;
  /** A uniform draw in [0, 1) for jitter; the simulator passes its seeded one. */
  readonly random?: () => number;
}

const DEFAULT_RETRY: RetryPolicy = { baseMs: 50, maxMs: 5000 };

interface Entry<T> {
  readonly txn: T;
  readonly timers: Map<string, Timer>;
}

export class TransactionRuntime<T, I extends { readonly type: string }, M> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly queue = new KeyedSerialQueue();
  /** Inputs waiting to be tried again, per transaction; cancelled when it leaves. */
  private readonly retries = new Map<string, Set<Timer>>();
  private readonly sendRetries = new Set<Timer>();
  private readonly clock: Clock;
  private readonly policy: RetryPolicy;
  private readonly random: () => number;
  private stopping = false;

  constructor(
    private readonly role: Role<T, I, M>,
    private readonly options: RuntimeOptions<M>,
  ) {
    this.clock = options.clock ?? systemClock;
    this.policy = options.retry ?? DEFAULT_RETRY;
    this.random = options.random ?? Math.random;
  }

  /** Starts running `txn` here; false when it already runs. */
  start(txnId: string, txn: T): boolean {
    if (this.entries.has(txnId) || this.stopping) return false;
    this.entries.set(txnId, { txn, timers: new Map() });
    return true;
  }

  has(txnId: string): boolean {
    return this.entries.has(txnId);
  }

  get(txnId: string): T | undefined {
    return this.entries.get(txnId)?.txn;
  }

  get size(): number {
    return this.entries.size;
  }

  *running(): IterableIterator<[string, T]> {
    for (const [txnId, entry] of this.entries) yield [txnId, entry.txn];
  }

  /** Feeds `input` to the transaction; resolves after the first attempt and never rejects. */
  submit(txnId: string, input: I): Promise<SubmitResult> {
    return this.attempt(txnId, input, 0);
  }

  /** Arms a timer outside a step, e.g. a driver's own check; a later one of the same name replaces it. */
  arm(txnId: string, timer: ArmTimer<I>): void {
    const entry = this.entries.get(txnId);
    if (!entry || this.stopping) return;
    entry.timers.get(timer.name)?.cancel();
    const handle = this.clock.setTimer(timer.afterMs, () => {
      if (entry.timers.get(timer.name) === handle) entry.timers.delete(timer.name);
      void this.submit(txnId, timer.input);
    });
    entry.timers.set(timer.name, handle);
  }

  /** The transaction leaves this process: its timers and pending retries stop. */
  finish(txnId: string): void {
    const entry = this.entries.get(txnId);
    for (const timer of this.retries.get(txnId) ?? []) timer.cancel();
    this.retries.delete(txnId);
    if (!entry) return;
    for (const timer of entry.timers.values()) timer.cancel();
    this.entries.delete(txnId);
    this.role.onFinish?.(entry.txn, txnId);
  }

  /** Stops every timer and retry; steps already running finish on their own. */
  stop(): void {
    this.stopping = true;
    for (const txnId of [...this.entries.keys()]) {
      const entry = this.entries.get(txnId);
      for (const timer of entry?.timers.values() ?? []) timer.cancel();
    }
    for (const timers of this.retries.values()) for (const timer of timers) timer.cancel();
    this.retries.clear();
    for (const timer of this.sendRetries) timer.cancel();
    this.sendRetries.clear();
  }

  isStopping(): boolean {
    return this.stopping;
  }

  /** Resolves once every step queued so far has settled (tests and graceful shutdown). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private attempt(txnId: string, input: I, failures: number): Promise<SubmitResult> {
    if (this.stopping) return Promise.resolve({ status: 'ignored' });
    return this.queue.run(txnId, () => this.step(txnId, input)).then(
      (ran): SubmitResult => ({ status: ran ? 'done' : 'ignored' }),
      (error: unknown): SubmitResult => {
        if (error instanceof BadInput) {
          this.options.logger.warn(`${this.options.name} ${txnId}: ${input.type} refused: ${error.message}`);
          return { status: 'bad', reason: error.message };
        }
        this.retryLater(txnId, input, failures + 1, error);
        return { status: 'retrying' };
      },
    );
  }

  /** One step; false when there was nothing to run it on. */
  private async step(txnId: string, input: I): Promise<boolean> {
    if (this.stopping) return false;
    let entry = this.entries.get(txnId);
    if (!entry && this.role.load) {
      const loaded = await this.role.load(txnId, input);
      if (loaded === undefined) return false;
      entry = this.entries.get(txnId);
      if (!entry) {
        this.start(txnId, loaded);
        entry = this.entries.get(txnId);
      }
    }
    if (!entry) return false;
    const outcome = await this.role.run(entry.txn, input, txnId);
    if (!outcome || this.stopping) return true;
    for (const name of outcome.cancelTimers ?? []) {
      entry.timers.get(name)?.cancel();
      entry.timers.delete(name);
    }
    if (this.entries.get(txnId) === entry) for (const timer of outcome.timers ?? []) this.arm(txnId, timer);
    const messages = outcome.messages ?? [];
    if (messages.length > 0) await this.send(txnId, messages, outcome.around, 0);
    if (outcome.afterSend) await outcome.afterSend();
    if (outcome.finished) this.finish(txnId);
    return true;
  }

  private async send(txnId: string, messages: readonly M[], around: StepOutcome<I, M>['around'], failures: number): Promise<void> {
    const send = (): Promise<void> => this.options.transport.send(messages);
    try {
      await (around ? around(send) : send());
    } catch (error) {
      if (this.stopping) return;
      const delay = this.backoff(failures + 1);
      this.options.logger.warn(`${this.options.name} ${txnId}: sending ${messages.length} message(s) failed (attempt ${failures + 1}), again in ${delay} ms: ${describe(error)}`);
      const timer = this.clock.setTimer(delay, () => {
        this.sendRetries.delete(timer);
        void this.send(txnId, messages, around, failures + 1);
      });
      this.sendRetries.add(timer);
    }
  }

  private retryLater(txnId: string, input: I, failures: number, error: unknown): void {
    if (this.stopping) return;
    if (!this.entries.has(txnId) && !this.role.load) return;
    const delay = this.backoff(failures);
    this.options.logger.warn(`${this.options.name} ${txnId}: ${input.type} failed (attempt ${failures}), again in ${delay} ms: ${describe(error)}`);
    const pending = this.retries.get(txnId) ?? new Set<Timer>();
    this.retries.set(txnId, pending);
    const timer = this.clock.setTimer(delay, () => {
      pending.delete(timer);
      if (pending.size === 0 && this.retries.get(txnId) === pending) this.retries.delete(txnId);
      void this.attempt(txnId, input, failures);
    });
    pending.add(timer);
  }

  /** Exponential backoff with jitter, so replicas retrying the same outage do not retry in step. */
  private backoff(failures: number): number {
    const ceiling = Math.min(this.policy.maxMs, this.policy.baseMs * 2 ** Math.min(failures - 1, 20));
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
