/**
 * Runs this replica's Paxos Commit acceptor (protocols/paxos-commit/acceptor.ts) against its
 * own database and Kafka. A step's record is committed in the acceptor database before any
 * of the step's replies leaves (persist before send, protocols/common/effects.ts), which is
 * what lets a promise or an acceptance survive a crash; steps of one transaction run one at a
 * time. State lives in memory while a transaction is active and is rebuilt from the database
 * when a message arrives for one it no longer holds.
 *
 * Each step runs in a span (`acceptor phase 2a`, `acceptor phase 1a`) under the Kafka message
 * that asked for it, so the acceptor's work joins the transaction's trace like a participant's
 * handlers do. Ballot-0 acceptances are bundled into one phase 2b, sent from the step of the
 * last vote; that step's span links to the earlier steps whose acceptances it reports.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { Link, SpanContext, context, trace } from '@opentelemetry/api';
import { Clock, systemClock } from '../../runtime/ports';
import { RUNTIME_CLOCK } from '../../runtime/runtime.constants';
import { StepOutcome, TransactionRuntime } from '../../runtime/transaction-runtime';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { orderForDurability } from '../../protocols/common/effects';
import { AcceptorConfig, AcceptorEffect, AcceptorInput, AcceptorState, restoreAcceptor, step } from '../../protocols/paxos-commit/acceptor';
import { MessageOf, PaxosCommitMessage, isBallotZero } from '../../protocols/paxos-commit/messages';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { ATTR_TXN_ID, ATTR_TXN_PROTOCOL, inSpan } from '../../telemetry/txn-tracing';
import { EnvelopeOf } from '../../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { KAFKA_TOPICS } from '../../transport/kafka/kafka.constants';
import { paxosCommitTopicsFor } from '../../transport/kafka/paxos-commit-topics';
import { PAXOS_COMMIT, phaseEnvelope, phaseMessage, reasonsOf } from '../../transport/kafka/paxos-commit-wire';
import { Topics } from '../../transport/kafka/topics';
import { AcceptorStore } from './acceptor-store';

/** An acceptor forgets the memory copy of a transaction idle this long; its rows stay. */
const IDLE_EVICT_MS = 10 * 60_000;

interface Held {
  state: AcceptorState;
  touchedAt: number;
  /** Why participants voted Aborted, to pass on with the phase 2b (not durable: informational). */
  readonly reasons: Map<string, string>;
  /** The span of the step that accepted each instance's ballot-0 vote, until a phase 2b reports it. */
  readonly acceptedIn: Map<string, SpanContext>;
}

type AcceptorMessage = EnvelopeOf<'PHASE2A' | 'PHASE1A'>;

@Injectable()
export class AcceptorDriver implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AcceptorDriver.name);
  /** Held transactions are the runtime's entries; one not held is restored from the acceptor database. */
  private readonly runtime: TransactionRuntime<Held, AcceptorMessage, OutboundMessage>;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KAFKA_TOPICS) private readonly topics: Topics,
    private readonly store: AcceptorStore,
    private readonly publisher: KafkaPublisher,
    private readonly registry: ParticipantRegistry,
    @Optional() @Inject(RUNTIME_CLOCK) clock: Clock = systemClock,
  ) {
    this.runtime = new TransactionRuntime<Held, AcceptorMessage, OutboundMessage>(
      { run: (held, envelope) => this.apply(held, envelope), load: (txnId) => this.restore(txnId) },
      // Nothing was revealed by a step that failed: it is tried again, never answered half-done.
      { name: 'acceptor transaction', transport: { send: (messages) => this.publisher.publish(messages) }, logger: this.logger, clock },
    );
  }

  onModuleInit(): void {
    if (!this.config.paxosCommit) return;
    this.sweeper = setInterval(() => this.evictIdle(), IDLE_EVICT_MS / 10);
    this.sweeper.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
    this.runtime.stop();
  }

  /** Handles a PHASE2A or PHASE1A addressed to this acceptor; resolves once its step has been tried. */
  async handle(envelope: AcceptorMessage): Promise<void> {
    await this.runtime.submit(envelope.txnId, envelope);
  }

  private apply(held: Held, envelope: AcceptorMessage): Promise<StepOutcome<AcceptorMessage, OutboundMessage> | undefined> {
    const message = phaseMessage(envelope);
    if (!message || (message.type !== 'phase2a' && message.type !== 'phase1a')) return Promise.resolve(undefined);
    const { round, replica } = message.ballot;
    const attributes = {
      [ATTR_TXN_ID]: envelope.txnId,
      [ATTR_TXN_PROTOCOL]: PAXOS_COMMIT,
      'paxos.acceptor': this.config.coordinatorId,
      'paxos.proposer': envelope.from,
      'paxos.ballot.round': round,
      ...(replica ? { 'paxos.ballot.replica': replica } : {}),
      'paxos.instances': message.type === 'phase2a' ? message.entries.map((e) => e.rm) : [...message.instances],
    };
    const name = message.type === 'phase2a' ? 'acceptor phase 2a' : 'acceptor phase 1a';
    return inSpan(name, context.active(), attributes, () => this.step(held, envelope, message));
  }

  private async step(held: Held, envelope: AcceptorMessage, message: MessageOf<'phase2a' | 'phase1a'>): Promise<StepOutcome<AcceptorMessage, OutboundMessage>> {
    if (message.type === 'phase2a' && isBallotZero(message.ballot)) for (const [rm, reason] of reasonsOf(envelope as EnvelopeOf<'PHASE2A'>)) held.reasons.set(rm, reason);
    const input: AcceptorInput = message.type === 'phase2a' ? { type: 'phase2a', message } : { type: 'phase1a', message };
    const result = step(held.state, input, this.acceptorConfig());
    const { persists, rest } = orderForDurability<AcceptorEffect>(result.effects);
    // Persist before send: nothing of this step is revealed until its record is committed.
    for (const effect of persists) if (effect.kind === 'persist') await this.store.persist(envelope.txnId, effect.record);
    held.state = result.state;
    held.touchedAt = Date.now();
    const outbound = rest.flatMap((effect) => (effect.kind === 'send' ? [this.outbound(held, effect.to, effect.message)] : []));
    this.traceBundle(held, message, rest);
    // The replies leave under this step's span, once the runtime has them.
    const span = context.active();
    return { messages: outbound, around: (send) => context.with(span, send) };
  }

  /**
   * Notes on the step's span which instances its phase 2b reports, with links to the steps
   * that accepted them when those were earlier ones (a bundle), and remembers the step that
   * accepted a ballot-0 vote until its report leaves.
   */
  private traceBundle(held: Held, message: MessageOf<'phase2a' | 'phase1a'>, effects: readonly AcceptorEffect[]): void {
    const span = trace.getActiveSpan();
    if (!span?.isRecording()) return;
    const here = span.spanContext();
    if (message.type === 'phase2a' && isBallotZero(message.ballot)) {
      for (const { rm } of message.entries) if (held.state.pending.includes(rm) && !held.acceptedIn.has(rm)) held.acceptedIn.set(rm, here);
    }
    const reported = new Set(effects.flatMap((e) => (e.kind === 'send' && e.message.type === 'phase2b' ? e.message.entries.map((entry) => entry.rm) : [])));
    if (reported.size === 0) return;
    span.setAttribute('paxos.reported', [...reported]);
    const links: Link[] = [];
    for (const rm of reported) {
      const acceptedIn = held.acceptedIn.get(rm);
      held.acceptedIn.delete(rm);
      if (acceptedIn && acceptedIn.spanId !== here.spanId && !links.some((l) => l.context.spanId === acceptedIn.spanId)) links.push({ context: acceptedIn });
    }
    if (links.length > 0) span.addLinks(links);
  }

  private async restore(txnId: string): Promise<Held> {
    const state = restoreAcceptor(txnId, this.config.coordinatorId, await this.store.load(txnId));
    return { state, touchedAt: Date.now(), reasons: new Map(), acceptedIn: new Map() };
  }

  /**
   * Phase 2b goes to participants' topics when the core addresses a participant (the faster
   * variant), and to the leader's topic otherwise; phase 1b always goes to a leader.
   */
  private outbound(held: Held, to: string, message: PaxosCommitMessage): OutboundMessage {
    if (message.type !== 'phase1b' && message.type !== 'phase2b') throw new Error(`an acceptor does not send ${message.type}`);
    const envelope = phaseEnvelope(message, this.config.coordinatorId, held.reasons);
    const toParticipant = message.type === 'phase2b' && (held.state.membership?.rms.includes(to) ?? false);
    const topic = toParticipant ? (this.registry.topicOf(to) ?? this.topics.participant(to)) : paxosCommitTopicsFor(this.config.topicPrefix).leader(to);
    return { topic, envelope };
  }

  private acceptorConfig(): AcceptorConfig {
    return { phase2bToRms: this.config.paxosCommit?.phase2bToRms ?? false };
  }

  /**
   * Drops memory copies that have been idle long. Only fully durable ones go: an acceptance
   * still held back for its bundle exists nowhere else yet.
   */
  private evictIdle(): void {
    const cutoff = Date.now() - IDLE_EVICT_MS;
    for (const [txnId, held] of [...this.runtime.running()]) {
      if (held.touchedAt < cutoff && held.state.dirty.length === 0) this.runtime.finish(txnId);
    }
  }
}
