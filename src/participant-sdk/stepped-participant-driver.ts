/**
 * What the 2pc and Paxos Commit participant drivers share around their protocol cores: inputs
 * for one transaction are fed one at a time, each step runs under the transaction's log row
 * lock, its messages leave only once the step has committed (the durability rule of
 * protocols/common/effects.ts), and an in-doubt transaction keeps one query timer that feeds
 * the core a `timer` input until the outcome is known. A subclass supplies the step itself.
 */
import { KeyedSerialQueue } from '../common/keyed-serial-queue';
import { LockedRowOf, ParticipantLogRow, RowLockingLog } from './participant-log-store';
import { ParticipantLogger } from './participant-sdk.types';
import { errorMessage } from './service-handlers';

/** The input a query timer feeds back; each of these protocol cores reads it as "ask again". */
export type QueryTimerInput = { readonly type: 'timer'; readonly timer: 'query' };

export interface SteppedDriverOptions<Row extends ParticipantLogRow, Message> {
  readonly log: RowLockingLog<Row>;
  /** Sends a step's messages; resolves once the broker has them. */
  readonly publish: (messages: readonly Message[]) => Promise<void>;
  readonly queryIntervalMs: number;
  readonly logger: ParticipantLogger;
}

/** What a committed step leaves to do: the messages to send and when to ask again. */
export interface SteppedOutcome<Message> {
  /** The RM state after the step; `committed` and `aborted` end the transaction here. */
  readonly state: string;
  readonly messages: readonly Message[];
  readonly queryAfterMs?: number;
}

export abstract class SteppedParticipantDriver<Row extends ParticipantLogRow, Input extends { readonly type: string }, Context, Message> {
  private readonly queue = new KeyedSerialQueue();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopping = false;

  constructor(private readonly settings: SteppedDriverOptions<Row, Message>) {}

  /** Stops timers and waits for the steps already running. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.queue.idle();
  }

  /**
   * Runs one input through the core with the row locked and its changes not yet committed.
   * Returns undefined to leave the transaction as it was, with nothing to send.
   */
  protected abstract stepLocked(locked: LockedRowOf<Row>, input: Input | QueryTimerInput, context: Context | undefined): Promise<SteppedOutcome<Message> | undefined>;

  /** How a message is named in the log when sending it fails. */
  protected abstract describe(message: Message): string;

  protected dispatch(txnId: string, input: Input | QueryTimerInput, context?: Context): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return this.queue.run(txnId, () => this.apply(txnId, input, context));
  }

  /** Drops what the driver keeps for a transaction that has ended. */
  protected forget(txnId: string): void {
    clearTimeout(this.timers.get(txnId));
    this.timers.delete(txnId);
  }

  private async apply(txnId: string, input: Input | QueryTimerInput, context: Context | undefined): Promise<void> {
    const { log, logger, publish, queryIntervalMs } = this.settings;
    let outcome: SteppedOutcome<Message> | undefined;
    try {
      outcome = await log.withLockedRow(txnId, (locked) => this.stepLocked(locked, input, context));
    } catch (error) {
      // Nothing was committed and nothing was sent. The sender re-sends its messages; asking
      // again makes the participant retry on its own as well. A failed prepare leaves nothing
      // in doubt to ask about.
      logger.error(`transaction ${txnId}: ${input.type} failed and was rolled back, will retry: ${errorMessage(error)}`);
      if (input.type !== 'prepare') this.arm(txnId, queryIntervalMs);
      return;
    }
    if (!outcome) return;
    if (outcome.messages.length > 0) {
      try {
        await publish(outcome.messages);
      } catch (error) {
        // Durable state is already right: a lost message is made good by a re-sent one, a
        // leader's ballot or this participant's next query.
        logger.warn(`transaction ${txnId}: sending ${outcome.messages.map((m) => this.describe(m)).join(', ')} failed: ${errorMessage(error)}`);
      }
    }
    if (outcome.state === 'committed' || outcome.state === 'aborted') this.forget(txnId);
    else if (outcome.queryAfterMs !== undefined) this.arm(txnId, outcome.queryAfterMs);
  }

  private arm(txnId: string, afterMs: number): void {
    if (this.stopping) return;
    clearTimeout(this.timers.get(txnId));
    const timer = setTimeout(() => {
      this.timers.delete(txnId);
      void this.dispatch(txnId, { type: 'timer', timer: 'query' });
    }, afterMs);
    timer.unref();
    this.timers.set(txnId, timer);
  }
}
