/**
 * What the 2PC and 3PC coordinator drivers share: the transactions running in this replica
 * and their ownership (expect / adopt / release), outbound envelopes, and answers from the
 * log for transactions not running here. Queueing, timers, sending and the failure policy
 * belong to the runtime (runtime/transaction-runtime.ts); each driver keeps only its `run`,
 * which carries out one core step's writes and returns what to send and which timers to arm.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { Failpoint, Failpoints } from '../common/failpoints';
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
import { ArmTimer, StepOutcome, TransactionRuntime } from '../runtime/transaction-runtime';
import { Context, context } from '@opentelemetry/api';
import { Clock, systemClock } from '../runtime/ports';
import { RUNTIME_CLOCK } from '../runtime/runtime.constants';
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
    /** Node's monotonic clock unless a simulation binds its own. */
    @Optional() @Inject(RUNTIME_CLOCK) readonly clock: Clock = systemClock,
  ) {}
}

/** What a step of a coordinator driver leaves for the runtime. */
export type DriverOutcome<I> = StepOutcome<I, OutboundMessage>;

/** A step's messages and timers as a driver collects them, before `outcome` wraps them. */
export interface StepWork<I> {
  readonly outbound: OutboundMessage[];
  readonly timers: ArmTimer<I>[];
  /** A failpoint that stops the send halfway (fault tests only). */
  readonly partial?: Failpoint;
  /** What to do once the step's messages are out. */
  readonly then: () => Promise<void>;
  readonly finished?: boolean;
}

export abstract class ProtocolDriverBase<S extends { readonly txnId: string; readonly rms: readonly string[] }, I extends { readonly type: string }>
  implements ProtocolDriver, OnApplicationShutdown
{
  abstract readonly protocol: ProtocolName;
  protected readonly logger = new Logger(this.constructor.name);
  protected readonly runtime: TransactionRuntime<RunningTransaction<S>, I, OutboundMessage>;
  /** Transactions being logged by the API right now, about to `begin` here. */
  private readonly expected = new Set<string>();
  protected readonly failpoints: Failpoints;
  protected readonly config: AppConfig;
  protected readonly topics: Topics;
  protected readonly log: DecisionLogRepository;
  protected readonly publisher: KafkaPublisher;
  protected readonly registry: ParticipantRegistry;
  protected readonly waiters: DecisionWaiters;
  protected readonly events: TransactionEvents;
  protected readonly clock: Clock;

  constructor(deps: DriverDependencies) {
    this.clock = deps.clock ?? systemClock;
    ({ config: this.config, topics: this.topics, log: this.log, publisher: this.publisher } = deps);
    ({ registry: this.registry, waiters: this.waiters, events: this.events } = deps);
    this.failpoints = new Failpoints(deps.config.failpoints);
    this.runtime = new TransactionRuntime<RunningTransaction<S>, I, OutboundMessage>(
      { run: (txn, input) => this.run(txn, input), onFinish: (txn, txnId) => this.onFinish(txnId, txn) },
      { name: 'transaction', transport: { send: (messages) => this.publisher.publish(messages) }, logger: this.logger, clock: this.clock },
    );
    deps.registry.onParticipantDown((rm) => this.participantDown(rm));
  }

  abstract begin(txn: TransactionEntity): Promise<void>;
  abstract adopt(txn: TransactionEntity): Promise<void>;
  abstract deliver(envelope: Envelope): Promise<boolean>;
  abstract requestAbort(txnId: string, reason: string): Promise<void>;
  /**
   * Runs one input through the core and resolves once the step's records are durable; the
   * runtime then sends what it returns. Called one at a time per transaction.
   */
  protected abstract run(txn: RunningTransaction<S>, input: I): Promise<DriverOutcome<I> | undefined>;
  /** The registry's failure detector reports `rm` gone. */
  protected abstract participantDown(rm: string): void;

  onApplicationShutdown(): void {
    this.runtime.stop();
  }

  expect(txnId: string): void {
    this.expected.add(txnId);
  }

  unexpect(txnId: string): void {
    this.expected.delete(txnId);
  }

  isActive(txnId: string): boolean {
    return this.runtime.has(txnId) || this.expected.has(txnId);
  }

  activeCount(): number {
    return this.runtime.size;
  }

  /** Stops running the transactions of partitions this replica no longer holds; their new owner takes over. */
  release(partitions: readonly number[]): number {
    const released = [...this.runtime.running()].filter(([, txn]) => partitions.includes(txn.partition));
    for (const [txnId] of released) this.runtime.finish(txnId);
    return released.length;
  }

  /** Starts running a transaction the API has just logged (or the log holds); it is no longer only expected. */
  protected startRunning(txn: RunningTransaction<S>): boolean {
    this.expected.delete(txn.state.txnId);
    return this.runtime.start(txn.state.txnId, txn);
  }

  /** Feeds an input to a running transaction; resolves once its step has been tried. */
  protected async dispatch(txnId: string, input: I): Promise<void> {
    await this.runtime.submit(txnId, input);
  }

  protected running(txnId: string): RunningTransaction<S> | undefined {
    return this.runtime.get(txnId);
  }

  /** A driver's own timer on a running transaction, outside any step. */
  protected arm(txn: RunningTransaction<S>, timer: string, afterMs: number, input: I): void {
    this.runtime.arm(txn.state.txnId, { name: timer, afterMs, input });
  }

  /** The transaction leaves this process (done, released, or owned by someone newer). */
  protected onFinish(_txnId: string, txn: RunningTransaction<S>): void {
    txn.trace.end();
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
   * What a step leaves to the runtime: its messages, sent in the transaction's trace, its
   * timers, and `then` after the send. With `partial` on, only the first message leaves and
   * the process stops at that failpoint, so a test can kill it with a decision (or a
   * PreCommit) delivered to some participants only.
   */
  protected outcome(txn: RunningTransaction<S>, parent: Context, step: StepWork<I>): DriverOutcome<I> {
    const txnId = txn.state.txnId;
    const { outbound, partial } = step;
    const stopHalfway = partial !== undefined && outbound.length > 1 && this.failpoints.isEnabled(partial);
    return {
      messages: stopHalfway ? outbound.slice(0, 1) : outbound,
      timers: step.timers,
      finished: step.finished,
      around: (send) => context.with(txn.trace.context(parent), send),
      afterSend: async () => {
        if (stopHalfway) await this.failpoints.reach(partial, txnId);
        await step.then();
      },
    };
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
    await this.publisher.publish([{ topic: this.participantTopic(rm), envelope }]);
  }
}
