/**
 * What the 2PC and 3PC coordinator drivers share: the transactions running in this replica
 * and their ownership (expect / adopt / release), one serial queue per transaction so a core
 * never sees two inputs of one transaction at once, timers, outbound envelopes, and answers
 * from the log for transactions not running here. Each driver keeps its own `apply`, which
 * runs one core step under the durability rule of protocols/common/effects.ts.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Failpoint, Failpoints } from '../common/failpoints';
import { KeyedSerialQueue } from '../common/keyed-serial-queue';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { Decision } from '../protocols/common/effects';
import { ParticipantRegistry } from '../registry/participant-registry.service';
import { TransactionEvents, TransactionFact } from '../telemetry/transaction-events';
import { activeTraceparent } from '../telemetry/txn-tracing';
import { Envelope, ProtocolName } from '../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../transport/kafka/kafka-publisher';
import { KAFKA_TOPICS } from '../transport/kafka/kafka.constants';
import { HEADER_TRACEPARENT, Topics } from '../transport/kafka/topics';
import { DecisionWaiters } from './decision-waiters';
import { ProtocolDriver } from './protocol-driver';
import { TransactionTrace } from './transaction-trace';



/** A message type with its body, before the envelope's common fields are added. */
export type EnvelopeContent = { [T in Envelope['type']]: { readonly type: T; readonly body: Extract<Envelope, { type: T }>['body'] } }[Envelope['type']];

/** What a driver keeps in memory for a transaction it runs: the core's state plus what the wire needs. */
export interface RunningTransaction<S> {
  state: S;
  readonly protocol: ProtocolName;
  readonly payloads: ReadonlyMap<string, unknown>;
  readonly timeoutMs: number;
  readonly epoch: number;
  readonly partition: number;
  readonly traceContext: string | null;
  readonly startedAt: number;
  readonly timers: Map<string, NodeJS.Timeout>;
  readonly trace: TransactionTrace;
}

/** The parts of a running transaction that come straight from its log entry. */
export function runningFromLog<S>(txn: TransactionEntity, protocol: ProtocolName, state: S): RunningTransaction<S> {
  return {
    state,
    protocol,
    payloads: new Map(txn.participants.map((p) => [p.name, p.payload])),
    timeoutMs: txn.timeoutMs,
    epoch: txn.epoch,
    partition: txn.partition,
    traceContext: txn.traceContext,
    startedAt: new Date(txn.createdAt).getTime(),
    timers: new Map(),
    trace: new TransactionTrace(txn.id, protocol, txn.traceContext, txn.decision),
  };
}

/** The collaborators every coordinator driver needs, injected as one object so that each driver's constructor stays one line. */
@Injectable()
export class DriverDependencies {
  constructor(
    @Inject(APP_CONFIG) readonly config: AppConfig,
    @Inject(KAFKA_TOPICS) readonly topics: Topics,
    readonly log: DecisionLogRepository,
    readonly publisher: KafkaPublisher,
    readonly registry: ParticipantRegistry,
    readonly waiters: DecisionWaiters,
    readonly events: TransactionEvents,
  ) {}
}

export abstract class ProtocolDriverBase<S extends { readonly txnId: string; readonly rms: readonly string[] }, I extends { readonly type: string }>
  implements ProtocolDriver, OnApplicationShutdown
{
  abstract readonly protocol: ProtocolName;
  protected readonly logger = new Logger(this.constructor.name);
  protected readonly active = new Map<string, RunningTransaction<S>>();
  /** Transactions being logged by the API right now, about to `begin` here. */
  private readonly expected = new Set<string>();
  private readonly queue = new KeyedSerialQueue();
  protected stopping = false;
  protected readonly failpoints: Failpoints;
  protected readonly config: AppConfig;
  protected readonly topics: Topics;
  protected readonly log: DecisionLogRepository;
  protected readonly publisher: KafkaPublisher;
  protected readonly registry: ParticipantRegistry;
  protected readonly waiters: DecisionWaiters;
  protected readonly events: TransactionEvents;

  constructor(deps: DriverDependencies) {
    ({ config: this.config, topics: this.topics, log: this.log, publisher: this.publisher } = deps);
    ({ registry: this.registry, waiters: this.waiters, events: this.events } = deps);
    this.failpoints = new Failpoints(deps.config.failpoints);
    deps.registry.onParticipantDown((rm) => this.participantDown(rm));
  }

  abstract begin(txn: TransactionEntity): Promise<void>;
  abstract adopt(txn: TransactionEntity): Promise<void>;
  abstract deliver(envelope: Envelope): Promise<boolean>;
  abstract requestAbort(txnId: string, reason: string): Promise<void>;
  /** Runs one input through the core; called by `dispatch`, one at a time per transaction. */
  protected abstract apply(txnId: string, input: I): Promise<void>;
  /** The registry's failure detector reports `rm` gone. */
  protected abstract participantDown(rm: string): void;

  onApplicationShutdown(): void {
    this.stopping = true;
    for (const txn of this.active.values()) for (const timer of txn.timers.values()) clearTimeout(timer);
  }

  expect(txnId: string): void {
    this.expected.add(txnId);
  }

  unexpect(txnId: string): void {
    this.expected.delete(txnId);
  }

  isActive(txnId: string): boolean {
    return this.active.has(txnId) || this.expected.has(txnId);
  }

  activeCount(): number {
    return this.active.size;
  }

  /** Stops running the transactions of partitions this replica no longer holds; their new owner takes over. */
  release(partitions: readonly number[]): number {
    const released = [...this.active].filter(([, txn]) => partitions.includes(txn.partition));
    for (const [txnId, txn] of released) this.finish(txnId, txn);
    return released.length;
  }

  /** Starts running a transaction the API has just logged; it is no longer only expected. */
  protected startRunning(txn: RunningTransaction<S>): void {
    this.expected.delete(txn.state.txnId);
    this.active.set(txn.state.txnId, txn);
  }

  protected dispatch(txnId: string, input: I): Promise<void> {
    return this.queue.run(txnId, () => this.apply(txnId, input)).catch((error: Error) => {
      this.logger.error(`transaction ${txnId}: ${input.type} failed: ${error.stack ?? error.message}`);
    });
  }

  protected arm(txn: RunningTransaction<S>, timer: string, afterMs: number, input: I): void {
    clearTimeout(txn.timers.get(timer));
    const handle = setTimeout(() => void this.dispatch(txn.state.txnId, input), afterMs);
    handle.unref();
    txn.timers.set(timer, handle);
  }

  protected finish(txnId: string, txn: RunningTransaction<S>): void {
    for (const timer of txn.timers.values()) clearTimeout(timer);
    txn.trace.end();
    this.active.delete(txnId);
  }

  protected emit(txn: RunningTransaction<S>, fact: TransactionFact): void {
    this.events.emitFact(fact, { txnId: txn.state.txnId, protocol: txn.protocol, startedAt: txn.startedAt });
  }

  /** An envelope from this coordinator instance about `txn`. */
  protected envelope(txn: RunningTransaction<S>, content: EnvelopeContent): Envelope {
    return {
      v: 1,
      type: content.type,
      txnId: txn.state.txnId,
      protocol: txn.protocol,
      from: this.config.coordinatorId,
      epoch: txn.epoch,
      sentAt: new Date().toISOString(),
      body: content.body,
    } as Envelope;
  }

  /** Addresses `envelope` to participant `rm`, carrying the transaction's trace. */
  protected toParticipant(txn: RunningTransaction<S>, rm: string, envelope: Envelope): OutboundMessage {
    // The kafkajs instrumentation replaces this with its producer span when tracing is on.
    const traceparent = activeTraceparent() ?? txn.traceContext;
    const headers = traceparent ? { [HEADER_TRACEPARENT]: traceparent } : undefined;
    return { topic: this.participantTopic(rm), envelope, headers };
  }

  protected participantTopic(rm: string): string {
    return this.registry.topicOf(rm) ?? this.topics.participant(rm);
  }

  /**
   * Sends one step's messages. With `partial` on, only the first message leaves and the
   * process stops at that failpoint, so a test can kill it with a decision (or a PreCommit)
   * delivered to some participants only.
   */
  protected async publish(txnId: string, outbound: OutboundMessage[], partial?: Failpoint): Promise<void> {
    const stopHalfway = partial !== undefined && outbound.length > 1 && this.failpoints.isEnabled(partial);
    try {
      await this.publisher.publish(stopHalfway ? outbound.slice(0, 1) : outbound);
    } catch (error) {
      // Lost prepares end in the prepare timeout; lost decisions are resent by the resend timer.
      this.logger.warn(`transaction ${txnId}: sending ${outbound.length} message(s) failed: ${(error as Error).message}`);
    }
    if (stopHalfway) await this.failpoints.reach(partial, txnId);
  }

  /**
   * Answers a participant asking about a transaction that does not run here with the
   * decision in the log; an undecided one gets no answer. A transaction the log does not know
   * was never accepted, so nobody can have been told to commit it: that is answered ABORT.
   */
  protected async answerFromLog(txnId: string, rm: string, senderEpoch: number, body: Record<string, string> = {}): Promise<void> {
    const logged = await this.log.findById(txnId);
    const decision: Decision | null = logged ? logged.decision : 'ABORT';
    if (!decision) return;
    const envelope = {
      v: 1,
      type: decision,
      txnId,
      protocol: this.protocol,
      from: this.config.coordinatorId,
      // For a transaction the log never knew, echo the asker's epoch so it does not fence us out.
      epoch: logged?.epoch ?? senderEpoch,
      sentAt: new Date().toISOString(),
      body,
    } as Envelope;
    await this.publish(txnId, [{ topic: this.participantTopic(rm), envelope }]);
  }
}
