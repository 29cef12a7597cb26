/**
 * Runs the pure Paxos Commit resource-manager core (protocols/paxos-commit/participant.ts)
 * against the service's database, its handlers and Kafka. The participant is the proposer of
 * ballot 0 of its own instance: it makes its vote durable with the prepared work and then
 * sends it as PHASE2A to every acceptor. It learns the outcome from the leader's COMMIT or
 * ABORT, or by itself from the acceptors' PHASE2B; it acknowledges on the coordinator topic,
 * and while in doubt asks every acceptor with QUERY. Each step runs inside one database
 * transaction holding the transaction's log row lock, and only then do its messages leave
 * (the durability rule of protocols/common/effects.ts); the transaction runtime retries a
 * step that failed (stepped-participant-driver.ts). docs/protocol.md has the contract.
 */
import { assertNever } from '../protocols/common/assert';
import { Decision } from '../protocols/common/effects';
import { LearnerState, emptyLearner } from '../protocols/paxos-commit/learner';
import { Membership, MessageOf, PaxosCommitMessage } from '../protocols/paxos-commit/messages';
import { ParticipantInput, ParticipantState, RmConfig, RmState, step } from '../protocols/paxos-commit/participant';
import { Clock } from '../runtime/ports';
import { Envelope } from '../transport/kafka/envelope';
import { PAXOS_COMMIT, ackEnvelope, phaseEnvelope, phaseMessage, queryEnvelope } from '../transport/kafka/paxos-commit-wire';
import { LockedPaxosLogRow, PaxosCommitParticipantLog, PaxosLogRow } from './paxos-commit-log.repository';
import { ParticipantHandlers, ParticipantLogger, TransactionContext } from './participant-sdk.types';
import { ServiceHandlers } from './service-handlers';
import { SteppedOutcome, SteppedParticipantDriver } from './stepped-participant-driver';

/** A paxos-commit message for this participant, already parsed from its envelope. */
export type PaxosCommitOrder =
  | {
      readonly type: 'PREPARE';
      readonly txnId: string;
      readonly payload: unknown;
      readonly timeoutMs: number;
      readonly membership: Membership;
      readonly leader: string;
      readonly traceparent?: string;
    }
  | { readonly type: 'COMMIT' | 'ABORT'; readonly txnId: string; readonly traceparent?: string }
  | { readonly type: 'PHASE2B'; readonly txnId: string; readonly message: MessageOf<'phase2b'>; readonly traceparent?: string };

export interface PaxosCommitOutbound {
  readonly topic: string;
  readonly envelope: Envelope;
  readonly traceparent?: string;
}

export interface PaxosCommitDriverOptions {
  readonly name: string;
  readonly handlers: ParticipantHandlers;
  readonly log: PaxosCommitParticipantLog;
  readonly publish: (messages: readonly PaxosCommitOutbound[]) => Promise<void>;
  /** Where acceptor `id` reads (votes, queries) and where acknowledgements go. */
  readonly topics: { acceptor(id: string): string; readonly coordinator: string };
  readonly queryIntervalMs: number;
  readonly logger: ParticipantLogger;
  /** Timers and retry backoff; Node's timers unless given. */
  readonly clock?: Clock;
}

/**
 * The driver's memory of a transaction is what it learned from phase 2b so far: it is held
 * while the transaction is in doubt and lost on restart, when the participant asks instead.
 */
export class PaxosCommitParticipantDriver extends SteppedParticipantDriver<PaxosLogRow, ParticipantInput, PaxosCommitOrder, PaxosCommitOutbound, LearnerState> {
  private readonly config: RmConfig;
  private readonly service: ServiceHandlers;

  constructor(private readonly options: PaxosCommitDriverOptions) {
    super(options, PAXOS_COMMIT);
    // Ballot 0 goes to every acceptor, so that no takeover is needed while one is down.
    this.config = { phase2aFanout: 'all', queryIntervalMs: options.queryIntervalMs };
    // A no vote is the value Aborted of this participant's instance, so the log calls it that.
    this.service = new ServiceHandlers({ name: options.name, protocol: PAXOS_COMMIT, handlers: options.handlers, logger: options.logger, noVote: 'Aborted' });
  }

  deliver(order: PaxosCommitOrder): Promise<void> {
    const input: ParticipantInput =
      order.type === 'PREPARE'
        ? { type: 'prepare', message: { type: 'Prepare', txnId: order.txnId, membership: order.membership, leader: order.leader } }
        : order.type === 'PHASE2B'
          ? { type: 'phase2b', message: order.message }
          : { type: 'outcome', decision: order.type };
    return this.dispatch(order.txnId, input, order);
  }

  /** Starts asking the acceptors about every transaction left in doubt by an earlier run. */
  async recover(): Promise<number> {
    const inDoubt = await this.options.log.findInDoubt();
    for (const txnId of inDoubt) void this.dispatch(txnId, { type: 'recover' });
    if (inDoubt.length > 0) this.options.logger.info(`recovering ${inDoubt.length} in-doubt paxos-commit transaction(s): asking the acceptors`);
    return inDoubt.length;
  }

  protected async stepLocked(
    locked: LockedPaxosLogRow,
    input: ParticipantInput,
    order: PaxosCommitOrder | undefined,
    learner: LearnerState | undefined,
  ): Promise<SteppedOutcome<PaxosCommitOutbound, LearnerState>> {
    const row = locked.row;
    const traceContext = order?.traceparent ?? row.traceContext;
    const payload = order?.type === 'PREPARE' && row.rmState === 'working' ? order.payload : row.payload;
    let state: ParticipantState = {
      txnId: row.txnId,
      rm: this.options.name,
      rmState: row.rmState,
      membership: row.membership ?? undefined,
      leader: row.leader ?? undefined,
      learner: learner ?? emptyLearner,
    };
    const first = step(state, input, this.config);
    const pending = first.effects.map((effect) => ({ effect, from: state.rmState }));
    state = first.state;
    const sends: { to: string; message: PaxosCommitMessage }[] = [];
    const reasons = new Map<string, string>();
    let queryAfterMs: number | undefined;
    const ctx: TransactionContext = { txnId: row.txnId, payload, db: locked.client };

    for (let i = 0; i < pending.length; i++) {
      const { effect, from } = pending[i];
      switch (effect.kind) {
        case 'runPrepare': {
          const verdict = await this.service.runPrepare(ctx);
          const vote: ParticipantInput = verdict.vote === 'YES' ? { type: 'localVote', vote: 'Prepared' } : { type: 'localVote', vote: 'Aborted', reason: verdict.reason };
          if (verdict.vote === 'NO') reasons.set(this.options.name, verdict.reason);
          const next = step(state, vote, this.config);
          pending.push(...next.effects.map((e) => ({ effect: e, from: state.rmState })));
          state = next.state;
          // In doubt, ask on our own once the prepare window has passed without an outcome.
          if (state.rmState === 'prepared' && order?.type === 'PREPARE') queryAfterMs = Math.max(order.timeoutMs, 0) + this.options.queryIntervalMs;
          break;
        }
        case 'persist': {
          const record = effect.record;
          const change = record.type === 'prepared' ? { membership: record.membership, leader: record.leader } : {};
          const reason = record.type === 'aborted' ? (record.reason ?? null) : row.reason;
          await locked.update({ ...change, rmState: record.type, payload, reason, traceContext });
          break;
        }
        case 'decide':
          // Only prepared work has anything to finish or undo; a NO vote already rolled its work back.
          if (from === 'prepared') await this.service.runDecision(effect.decision, ctx);
          break;
        case 'send':
          sends.push({ to: effect.to, message: effect.message });
          break;
        case 'setTimer':
          queryAfterMs = Math.max(queryAfterMs ?? 0, effect.afterMs);
          break;
        default:
          assertNever(effect, 'participant effect');
      }
    }
    const messages = sends.map(({ to, message }) => this.outbound(to, message, reasons, traceContext ?? undefined));
    const ack = this.ackFor(state.rmState, input, row.txnId, traceContext ?? undefined);
    // An ended transaction has nothing more to learn from phase 2b, so only one in doubt keeps its learner.
    const memory = state.rmState === 'prepared' ? state.learner : undefined;
    return { messages: ack ? [...messages, ack] : messages, queryAfterMs, memory };
  }

  /** Acknowledges an outcome once it is applied, and again for a repeated one, so the leader stops re-sending. */
  private ackFor(rmState: RmState, input: ParticipantInput, txnId: string, traceparent?: string): PaxosCommitOutbound | undefined {
    const outcome: Decision | undefined = rmState === 'committed' ? 'COMMIT' : rmState === 'aborted' ? 'ABORT' : undefined;
    if (!outcome) return undefined;
    if (input.type === 'outcome' && input.decision !== outcome) return undefined;
    if (input.type !== 'outcome' && input.type !== 'phase2b') return undefined;
    return { topic: this.options.topics.coordinator, envelope: ackEnvelope(txnId, outcome, this.options.name), traceparent };
  }

  /** The core addresses acceptors by id; on the wire each acceptor reads a topic of its own. */
  private outbound(to: string, message: PaxosCommitMessage, reasons: ReadonlyMap<string, string>, traceparent?: string): PaxosCommitOutbound {
    const topic = this.options.topics.acceptor(to);
    switch (message.type) {
      case 'phase2a':
        return { topic, envelope: phaseEnvelope(message, this.options.name, reasons), traceparent };
      case 'Query':
        return { topic, envelope: queryEnvelope(message.txnId, this.options.name), traceparent };
      default:
        throw new Error(`a participant does not send ${message.type}`);
    }
  }
}

/** The order a paxos-commit envelope on the participant's topic carries, or why it cannot be one. */
export function paxosCommitOrderOf(envelope: Envelope, traceparent: string | undefined): PaxosCommitOrder | string {
  const { txnId } = envelope;
  switch (envelope.type) {
    case 'PREPARE': {
      const { payload, timeoutMs, membership, leader } = envelope.body;
      if (!membership || !leader) return 'PREPARE: a paxos-commit PREPARE needs body.membership and body.leader';
      return { type: 'PREPARE', txnId, payload: payload ?? null, timeoutMs, membership, leader, traceparent };
    }
    case 'COMMIT':
    case 'ABORT':
      return { type: envelope.type, txnId, traceparent };
    case 'PHASE2B': {
      const message = phaseMessage(envelope);
      return message?.type === 'phase2b' ? { type: 'PHASE2B', txnId, message, traceparent } : 'PHASE2B: malformed';
    }
    default:
      return `${envelope.type} is not expected on a participant topic`;
  }
}
