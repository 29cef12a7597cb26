/**
 * Runs the pure 2PC resource-manager core (protocols/two-phase/participant.ts) against the
 * service's database, its handlers and Kafka. Each step runs inside one database transaction
 * holding the transaction's log row lock: the core's persist effects, the service's handler
 * writes and the row change commit together, and only then do the step's messages leave
 * (the durability rule of protocols/common/effects.ts). The transaction runtime feeds the
 * inputs of one transaction one at a time, so the core never sees interleaved steps, and
 * retries a step that failed (stepped-participant-driver.ts).
 */
import { assertNever } from '../protocols/common/assert';
import { Decision } from '../protocols/common/effects';
import { RmToTm } from '../protocols/two-phase/messages';
import { ParticipantEffect, ParticipantInput, ParticipantState, RmConfig, RmState, step } from '../protocols/two-phase/participant';
import { Clock } from '../runtime/ports';
import { LockedLogRow, LogRow, ParticipantLog } from './participant-log.repository';
import { ParticipantHandlers, ParticipantLogger, TransactionContext } from './participant-sdk.types';
import { ServiceHandlers, errorMessage } from './service-handlers';
import { SteppedOutcome, SteppedParticipantDriver } from './stepped-participant-driver';

// transaction-participant.ts takes errorMessage from here together with the driver it runs.
export { errorMessage };

/** An order from the coordinator, already parsed from its envelope. */
export type CoordinatorOrder =
  | { readonly type: 'PREPARE'; readonly txnId: string; readonly epoch: number; readonly payload: unknown; readonly timeoutMs: number; readonly traceparent?: string }
  | { readonly type: 'COMMIT' | 'ABORT'; readonly txnId: string; readonly epoch: number; readonly traceparent?: string };

/** A message for the coordinator, ready to be wrapped in an envelope. */
export type ParticipantReply =
  | { readonly type: 'VOTE'; readonly txnId: string; readonly epoch: number; readonly traceparent?: string; readonly body: { vote: 'YES' | 'NO'; reason?: string } }
  | { readonly type: 'ACK'; readonly txnId: string; readonly epoch: number; readonly traceparent?: string; readonly body: { outcome: Decision } }
  | { readonly type: 'QUERY'; readonly txnId: string; readonly epoch: number; readonly traceparent?: string; readonly body: Record<string, never> };

export interface ParticipantDriverOptions {
  readonly name: string;
  readonly handlers: ParticipantHandlers;
  readonly log: ParticipantLog;
  /** Sends replies; resolves once the broker has them. */
  readonly publish: (replies: readonly ParticipantReply[]) => Promise<void>;
  readonly queryIntervalMs: number;
  readonly logger: ParticipantLogger;
  /** Timers and retry backoff; Node's timers unless given. */
  readonly clock?: Clock;
}

interface OrderContext {
  readonly epoch?: number;
  readonly payload?: unknown;
  readonly timeoutMs?: number;
  readonly traceparent?: string;
}

type QueuedEffect = { readonly effect: ParticipantEffect; readonly from: RmState };

export class ParticipantDriver extends SteppedParticipantDriver<LogRow, ParticipantInput, OrderContext, ParticipantReply> {
  private readonly config: RmConfig;
  private readonly service: ServiceHandlers;

  constructor(private readonly options: ParticipantDriverOptions) {
    super(options, '2pc');
    this.config = { queryIntervalMs: options.queryIntervalMs };
    this.service = new ServiceHandlers({ name: options.name, protocol: '2pc', handlers: options.handlers, logger: options.logger, noVote: 'NO' });
  }

  /** Feeds an order from the coordinator; resolves once it has been handled, or failed and will be tried again. */
  deliver(order: CoordinatorOrder): Promise<void> {
    const input: ParticipantInput = order.type === 'PREPARE' ? { type: 'prepare' } : { type: order.type === 'COMMIT' ? 'commit' : 'abort' };
    const context: OrderContext =
      order.type === 'PREPARE'
        ? { epoch: order.epoch, payload: order.payload, timeoutMs: order.timeoutMs, traceparent: order.traceparent }
        : { epoch: order.epoch, traceparent: order.traceparent };
    return this.dispatch(order.txnId, input, context);
  }

  /** Starts asking the coordinator about every transaction left in doubt by an earlier run. */
  async recover(): Promise<number> {
    const inDoubt = await this.options.log.findInDoubt();
    for (const txnId of inDoubt) void this.dispatch(txnId, { type: 'recover' }, {});
    if (inDoubt.length > 0) this.options.logger.info(`recovering ${inDoubt.length} in-doubt transaction(s): asking the coordinator`);
    return inDoubt.length;
  }

  protected async stepLocked(locked: LockedLogRow, input: ParticipantInput, context: OrderContext = {}): Promise<SteppedOutcome<ParticipantReply> | undefined> {
    const row = locked.row;
    const isNew = row.rmState === 'working';
    if (context.epoch !== undefined && !isNew && context.epoch < row.epoch) {
      this.options.logger.debug?.(`transaction ${row.txnId}: ignoring ${input.type} from stale epoch ${context.epoch} < ${row.epoch}`);
      return undefined;
    }
    const epoch = Math.max(row.epoch, context.epoch ?? 0);
    const traceContext = context.traceparent ?? row.traceContext;
    const payload = context.payload !== undefined && (isNew || row.payload === null) ? context.payload : row.payload;
    if (epoch !== row.epoch && !isNew) await locked.update({ epoch });

    let state: ParticipantState = { txnId: row.txnId, rm: this.options.name, rmState: row.rmState };
    const first = step(state, input, this.config);
    const pending: QueuedEffect[] = first.effects.map((effect) => ({ effect, from: state.rmState }));
    state = first.state;
    const messages: RmToTm[] = [];
    let queryAfterMs: number | undefined;
    const ctx: TransactionContext = { txnId: row.txnId, payload, db: locked.client };

    for (let i = 0; i < pending.length; i++) {
      const { effect, from } = pending[i];
      switch (effect.kind) {
        case 'runPrepare': {
          const verdict = await this.service.runPrepare(ctx);
          const next = step(state, verdict.vote === 'YES' ? { type: 'localVote', vote: 'Prepared' } : { type: 'localVote', vote: 'Aborted', reason: verdict.reason }, this.config);
          pending.push(...next.effects.map((e) => ({ effect: e, from: state.rmState })));
          state = next.state;
          // An in-doubt participant asks on its own if the decision does not come in time.
          if (state.rmState === 'prepared') queryAfterMs = Math.max(context.timeoutMs ?? 0, 0) + this.options.queryIntervalMs;
          break;
        }
        case 'persist': {
          const record = effect.record;
          const reason = record.type === 'aborted' ? (record.reason ?? null) : null;
          await locked.update({ rmState: record.type, epoch, payload, reason, traceContext });
          break;
        }
        case 'decide':
          // Only prepared work has anything to finish or undo; a NO vote already rolled its work back.
          if (from === 'prepared') await this.service.runDecision(effect.decision, ctx);
          break;
        case 'send':
          messages.push(effect.message);
          break;
        case 'setTimer':
          // Keep the longer wait: asking before the prepare window has passed only adds traffic.
          queryAfterMs = Math.max(queryAfterMs ?? 0, effect.afterMs);
          break;
        default:
          assertNever(effect, 'participant effect');
      }
    }
    const replies = messages.map((message) => this.toReply(message, state.rmState, epoch, traceContext ?? undefined));
    return { messages: replies, queryAfterMs };
  }

  private toReply(message: RmToTm, rmState: RmState, epoch: number, traceparent: string | undefined): ParticipantReply {
    const common = { txnId: message.txnId, epoch, ...(traceparent ? { traceparent } : {}) };
    switch (message.type) {
      case 'Vote':
        return {
          ...common,
          type: 'VOTE',
          body: message.vote === 'Prepared' ? { vote: 'YES' } : { vote: 'NO', reason: message.reason ?? 'aborted' },
        };
      case 'Ack':
        return { ...common, type: 'ACK', body: { outcome: rmState === 'committed' ? 'COMMIT' : 'ABORT' } };
      case 'Query':
        return { ...common, type: 'QUERY', body: {} };
      default:
        return assertNever(message, 'participant message');
    }
  }
}
