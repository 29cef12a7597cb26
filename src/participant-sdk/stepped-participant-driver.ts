/**
 * What the participant drivers share around their protocol cores, as roles of the one
 * transaction runtime (runtime/transaction-runtime.ts). A step runs under the transaction's
 * log row lock and resolves only once it has committed, so the runtime sends its messages
 * after that (the durability rule of protocols/common/effects.ts), arms its timers, and
 * retries it with backoff when it failed. The protocol state lives in the log row; the
 * runtime holds a transaction only while something in memory is needed for it (a timer, a
 * learner, a retry) and lets it go once it is decided or was never joined.
 *
 * `SteppedParticipantDriver` is that role for the 2pc and Paxos Commit cores, whose only
 * timer is the in-doubt participant's query; a subclass supplies the step itself.
 */
import { Clock } from '../runtime/ports';
import { StepOutcome, TransactionRuntime } from '../runtime/transaction-runtime';
import { LockedRowOf, ParticipantLogRow, RowLockingLog } from './participant-log-store';
import { ParticipantLogger } from './participant-sdk.types';

/**
 * What the runtime keeps for one participant transaction: what the driver remembers between
 * steps, and the inputs whose step failed and is about to be tried again. While one of those
 * is pending the transaction stays held, since letting it go would cancel that retry.
 */
export class HeldTransaction<Memory> {
  private readonly failing = new Set<object>();

  constructor(public memory: Memory | undefined = undefined) {}

  /** Runs `input`'s step, noting whether the runtime will have to try it again. */
  async attempt<R>(input: object, work: () => Promise<R>): Promise<R> {
    try {
      const result = await work();
      this.failing.delete(input);
      return result;
    } catch (error) {
      this.failing.add(input);
      throw error;
    }
  }

  /** Whether another input of this transaction failed and waits for its retry. */
  get retrying(): boolean {
    return this.failing.size > 0;
  }
}

/** The input a query timer feeds back; each of these protocol cores reads it as "ask again". */
export type QueryTimerInput = { readonly type: 'timer'; readonly timer: 'query' };

const QUERY: QueryTimerInput = { type: 'timer', timer: 'query' };

/** One queued input: the core's input and what came with the message that carried it. */
export interface SteppedInput<Input, Context> {
  readonly type: string;
  readonly input: Input | QueryTimerInput;
  readonly context?: Context;
}

export interface SteppedDriverOptions<Row extends ParticipantLogRow, Message> {
  /** The participant's name; the runtime names it in what it logs. */
  readonly name: string;
  readonly log: RowLockingLog<Row>;
  /** Sends a step's messages; resolves once the broker has them, and is retried until it does. */
  readonly publish: (messages: readonly Message[]) => Promise<void>;
  readonly queryIntervalMs: number;
  readonly logger: ParticipantLogger;
  /** Timers and retry backoff; Node's timers unless given (specs pass a ManualClock). */
  readonly clock?: Clock;
}

/** What a committed step leaves to do: the messages to send and when to ask again. */
export interface SteppedOutcome<Message, Memory = never> {
  readonly messages: readonly Message[];
  readonly queryAfterMs?: number;
  /** What to remember about the transaction, once the step has committed. */
  readonly memory?: Memory;
}

type Held<Memory> = HeldTransaction<Memory>;

export abstract class SteppedParticipantDriver<Row extends ParticipantLogRow, Input extends { readonly type: string }, Context, Message, Memory = never> {
  private readonly runtime: TransactionRuntime<Held<Memory>, SteppedInput<Input, Context>, Message>;

  constructor(
    private readonly settings: SteppedDriverOptions<Row, Message>,
    protocol: string,
  ) {
    this.runtime = new TransactionRuntime<Held<Memory>, SteppedInput<Input, Context>, Message>(
      {
        // The row is the state, so any input may start a transaction here; the step decides.
        load: async () => new HeldTransaction<Memory>(),
        run: (held, input, txnId) => this.run(held, input, txnId),
      },
      { name: `${settings.name} ${protocol} transaction`, transport: { send: settings.publish }, logger: settings.logger, clock: settings.clock },
    );
  }

  /** Stops timers and retries, and waits for the steps already running. */
  async stop(): Promise<void> {
    this.runtime.stop();
    await this.runtime.idle();
  }

  /** Resolves once every step queued so far has settled. */
  idle(): Promise<void> {
    return this.runtime.idle();
  }

  /**
   * Runs one input through the core with the row locked and its changes not yet committed.
   * Returns undefined to leave the transaction as it was, with nothing to send.
   */
  protected abstract stepLocked(
    locked: LockedRowOf<Row>,
    input: Input | QueryTimerInput,
    context: Context | undefined,
    memory: Memory | undefined,
  ): Promise<SteppedOutcome<Message, Memory> | undefined>;

  /** Queues an input; resolves after its first attempt (a failed one is retried by the runtime). */
  protected async dispatch(txnId: string, input: Input | QueryTimerInput, context?: Context): Promise<void> {
    await this.runtime.submit(txnId, { type: input.type, input, context });
  }

  private async run(held: Held<Memory>, queued: SteppedInput<Input, Context>, txnId: string): Promise<StepOutcome<SteppedInput<Input, Context>, Message> | undefined> {
    const { outcome, rmState } = await held.attempt(queued, () =>
      this.settings.log.withLockedRow(txnId, async (locked) => {
        const outcome = await this.stepLocked(locked, queued.input, queued.context, held.memory);
        return { outcome, rmState: locked.row.rmState };
      }),
    );
    const decided = rmState === 'committed' || rmState === 'aborted';
    // Decided, or never joined: nothing is left to ask about, so nothing is left to hold.
    const finished = decided || (rmState === 'working' && !held.retrying);
    if (outcome?.memory !== undefined) held.memory = outcome.memory;
    if (!outcome) return finished ? { finished } : undefined;
    const timers = !decided && outcome.queryAfterMs !== undefined ? [{ name: 'query', afterMs: outcome.queryAfterMs, input: { type: QUERY.type, input: QUERY } }] : [];
    return { messages: outcome.messages, timers, finished };
  }
}
