/**
 * What a service embeds to take part in two-phase commit: it consumes the coordinator's
 * orders on `<prefix>.rm.<name>`, runs the service's handlers inside its own database
 * transactions, keeps the participant log, answers on `<prefix>.coordinator`, announces
 * itself on `<prefix>.participants`, and on start asks about transactions left in doubt.
 * Messages are dispatched by the envelope's `protocol`: Paxos Commit ones go to their own
 * driver (paxos-commit.driver.ts), which votes to the acceptors instead of a coordinator.
 * docs/protocol.md is the wire contract it implements.
 */
import { randomUUID } from 'node:crypto';
import { Consumer, EachMessagePayload } from 'kafkajs';
import { Pool } from 'pg';
import { withTimeout } from '../common/with-timeout';
import { Envelope, PARTICIPANT_NAME_PATTERN, parseEnvelope } from '../transport/kafka/envelope';
import { HEADER_TRACEPARENT, topicsFor } from '../transport/kafka/topics';
import { CoordinatorOrder, ParticipantDriver, errorMessage } from './participant.driver';
import { ParticipantKafkaTransport, headerText } from './participant-kafka.transport';
import { PostgresParticipantLog } from './participant-log.repository';
import { PaxosCommitParticipantDriver, paxosCommitOrderOf } from './paxos-commit.driver';
import { PostgresPaxosCommitLog } from './paxos-commit-log.repository';
import { paxosCommitTopicsFor } from '../transport/kafka/paxos-commit-topics';
import { ParticipantLogger, TransactionParticipantOptions } from './participant-sdk.types';
import { AnnouncementDetector } from './peer-detector';
import { inboundStep } from './three-phase-messages';
import { PostgresThreePhaseLog } from './three-phase-log.repository';
import { ThreePhaseParticipantDriver } from './three-phase.driver';
import { TM } from '../protocols/three-phase/messages';

const DEFAULTS = {
  topicPrefix: 'txn',
  announceIntervalMs: 1000,
  queryIntervalMs: 1000,
  sessionTimeoutMs: 10_000,
  topicPartitions: 6,
  partitionsConsumedConcurrently: 4,
  poolSize: 10,
  startTimeoutMs: 60_000,
  terminationGraceMs: 1000,
  collectTimeoutMs: 1000,
};

/** The coordinator's default PARTICIPANT_TTL_MS, for a 3pc PREPARE that does not carry one. */
const DEFAULT_PARTICIPANT_TTL_MS = 5000;

type Status = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Every protocol this SDK takes part in; the announcement tells coordinators. */
const SUPPORTED_PROTOCOLS = ['2pc', 'paxos-commit', '3pc'] as const;

export class TransactionParticipant<P = unknown> {
  /** Distinguishes this process from earlier or parallel instances of the same participant. */
  readonly instanceId = randomUUID();
  readonly name: string;
  private readonly logger: ParticipantLogger;
  private readonly settings: typeof DEFAULTS;
  private readonly pool: Pool;
  private readonly transport: ParticipantKafkaTransport;
  private readonly driver: ParticipantDriver;
  private readonly paxosCommit: PaxosCommitParticipantDriver;
  private readonly threePhase: ThreePhaseParticipantDriver;
  private readonly peers: AnnouncementDetector;
  private consumer: Consumer | undefined;
  private announceTimer: NodeJS.Timeout | undefined;
  private status: Status = 'new';

  constructor(private readonly options: TransactionParticipantOptions<P>) {
    validateOptions(options);
    this.name = options.name;
    this.logger = options.logger ?? consoleLogger(options.name);
    this.settings = { ...DEFAULTS, ...definedOnly(options) };
    this.pool = new Pool({ connectionString: options.databaseUrl, max: this.settings.poolSize });
    // An idle client losing its connection must not take the service down; the next query reconnects.
    this.pool.on('error', (error) => this.logger.warn(`postgres pool: ${error.message}`));
    this.transport = new ParticipantKafkaTransport({
      name: options.name,
      instanceId: this.instanceId,
      brokers: options.brokers,
      topics: topicsFor(this.settings.topicPrefix),
      topicPartitions: this.settings.topicPartitions,
      logger: this.logger,
      protocols: SUPPORTED_PROTOCOLS,
    });
    this.driver = new ParticipantDriver({
      name: options.name,
      handlers: options.handlers as TransactionParticipantOptions['handlers'],
      log: new PostgresParticipantLog(this.pool, options.name),
      publish: (replies) => this.transport.sendReplies(replies),
      queryIntervalMs: this.settings.queryIntervalMs,
      logger: this.logger,
    });
    this.paxosCommit = new PaxosCommitParticipantDriver({
      name: options.name,
      handlers: options.handlers as TransactionParticipantOptions['handlers'],
      log: new PostgresPaxosCommitLog(this.pool, options.name),
      publish: (messages) => this.transport.sendEnvelopes(messages),
      topics: { acceptor: paxosCommitTopicsFor(this.settings.topicPrefix).acceptor, coordinator: topicsFor(this.settings.topicPrefix).coordinator },
      queryIntervalMs: this.settings.queryIntervalMs,
      logger: this.logger,
    });
    const topics = topicsFor(this.settings.topicPrefix);
    this.peers = new AnnouncementDetector(this.transport.kafka, topics.participants, `${topics.participants}.detector.${options.name}.${this.instanceId}`, this.logger);
    this.threePhase = new ThreePhaseParticipantDriver({
      name: options.name,
      handlers: options.handlers as TransactionParticipantOptions['handlers'],
      log: new PostgresThreePhaseLog(this.pool, options.name),
      detector: this.peers,
      send: (messages) =>
        this.transport.sendEnvelopes(
          messages.map(({ to, type, txnId, epoch, body, traceparent }) => ({
            topic: to === TM ? topics.coordinator : topics.participant(to),
            envelope: { v: 1, type, txnId, protocol: '3pc', from: options.name, epoch, sentAt: new Date().toISOString(), body } as Envelope,
            traceparent,
          })),
        ),
      queryIntervalMs: this.settings.queryIntervalMs,
      collectTimeoutMs: this.settings.collectTimeoutMs,
      terminationGraceMs: this.settings.terminationGraceMs,
      defaultParticipantTtlMs: DEFAULT_PARTICIPANT_TTL_MS,
      logger: this.logger,
    });
  }

  /** The topic this participant consumes its orders from. */
  get topic(): string {
    return this.transport.ownTopic;
  }

  /**
   * Creates the log table and the topics if missing, joins the consumer group, starts asking
   * about in-doubt transactions and sends the first announcement. Resolves only then, so a
   * coordinator that sees the announcement can rely on the participant listening.
   */
  async start(): Promise<void> {
    if (this.status !== 'new') throw new Error(`participant ${this.name} cannot start: it is ${this.status}`);
    this.status = 'starting';
    try {
      await new PostgresParticipantLog(this.pool, this.name).ensureSchema();
      await new PostgresPaxosCommitLog(this.pool, this.name).ensureSchema();
      await new PostgresThreePhaseLog(this.pool, this.name).ensureSchema();
      await this.transport.connect();
      await this.startConsumer();
      await this.peers.start();
      await this.driver.recover();
      await this.paxosCommit.recover();
      await this.threePhase.recover();
      await this.transport.announce();
      this.scheduleAnnounce();
      this.status = 'running';
      this.logger.info(`participant ${this.name} is listening on ${this.topic} (instance ${this.instanceId})`);
    } catch (error) {
      await this.stop().catch(() => undefined);
      throw error;
    }
  }

  /** Stops announcing, finishes the messages being handled, and disconnects from Kafka and Postgres. */
  async stop(): Promise<void> {
    if (this.status === 'stopped' || this.status === 'stopping') return;
    this.status = 'stopping';
    clearTimeout(this.announceTimer);
    await this.consumer?.disconnect().catch((error: Error) => this.logger.warn(`consumer disconnect: ${error.message}`));
    await this.driver.stop();
    await this.paxosCommit.stop();
    await this.threePhase.stop();
    await this.peers.stop();
    await this.transport.disconnect().catch((error: Error) => this.logger.warn(`producer disconnect: ${error.message}`));
    await this.pool.end().catch((error: Error) => this.logger.warn(`postgres pool end: ${error.message}`));
    this.status = 'stopped';
    this.logger.info(`participant ${this.name} stopped`);
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.transport.kafka.consumer({
      groupId: this.topic,
      sessionTimeout: this.settings.sessionTimeoutMs,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 10,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    consumer.on(consumer.events.CRASH, (event) => this.logger.error(`consumer crashed (restart: ${event.payload.restart}): ${event.payload.error.message}`));
    await consumer.connect();
    // A brand-new group reads the topic from its start, so an order sent right after the
    // first announcement is never skipped; replays of old orders are harmless duplicates.
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: this.settings.partitionsConsumedConcurrently,
      eachMessage: (payload) => this.onMessage(payload),
    });
    await withTimeout(joined, this.settings.startTimeoutMs, `participant ${this.name} did not join consumer group ${this.topic}`);
  }

  private async onMessage({ topic, message }: EachMessagePayload): Promise<void> {
    const parsed = parseEnvelope(message.value ?? null);
    if (parsed.ok && parsed.envelope.protocol === 'paxos-commit') return this.onPaxosCommit(topic, message, parsed.envelope);
    if (parsed.ok && parsed.envelope.protocol === '3pc') return this.onThreePhase(topic, message, parsed.envelope);
    let reason: string | undefined;
    if (!parsed.ok) reason = parsed.reason;
    else if (parsed.envelope.type !== 'PREPARE' && parsed.envelope.type !== 'COMMIT' && parsed.envelope.type !== 'ABORT') {
      reason = `${parsed.envelope.type} is not expected on ${topic}`;
    }
    if (!parsed.ok || reason !== undefined) {
      await this.transport
        .deadLetter(topic, message, reason ?? 'rejected')
        .catch((error) => this.logger.error(`could not dead-letter a message from ${topic}: ${errorMessage(error)}`));
      return;
    }
    const envelope = parsed.envelope;
    const traceparent = headerText(message.headers, HEADER_TRACEPARENT);
    let order: CoordinatorOrder;
    if (envelope.type === 'PREPARE') {
      order = { type: 'PREPARE', txnId: envelope.txnId, epoch: envelope.epoch, payload: envelope.body.payload ?? null, timeoutMs: envelope.body.timeoutMs, traceparent };
    } else if (envelope.type === 'COMMIT' || envelope.type === 'ABORT') {
      order = { type: envelope.type, txnId: envelope.txnId, epoch: envelope.epoch, traceparent };
    } else {
      return;
    }
    await this.driver.deliver(order);
  }

  /** Paxos Commit messages go to their own driver; anything it cannot take is dead-lettered. */
  private async onPaxosCommit(topic: string, message: EachMessagePayload['message'], envelope: Envelope): Promise<void> {
    const order = paxosCommitOrderOf(envelope, headerText(message.headers, HEADER_TRACEPARENT));
    if (typeof order !== 'string') return this.paxosCommit.deliver(order);
    await this.transport.deadLetter(topic, message, order).catch((error) => this.logger.error(`could not dead-letter a message from ${topic}: ${errorMessage(error)}`));
  }

  /** Three-phase commit messages, from the coordinator or from peers, go to their own driver. */
  private async onThreePhase(topic: string, message: EachMessagePayload['message'], envelope: Envelope): Promise<void> {
    const step = inboundStep(envelope, headerText(message.headers, HEADER_TRACEPARENT));
    if (step) return this.threePhase.deliver(step, envelope.txnId);
    if (step === null) return;
    const reason = `${envelope.type} is not expected on ${topic}`;
    await this.transport.deadLetter(topic, message, reason).catch((error) => this.logger.error(`could not dead-letter a message from ${topic}: ${errorMessage(error)}`));
  }

  private scheduleAnnounce(): void {
    this.announceTimer = setTimeout(async () => {
      if (this.status !== 'running') return;
      try {
        await this.transport.announce();
      } catch (error) {
        this.logger.warn(`announcement failed: ${errorMessage(error)}`);
      }
      if (this.status === 'running') this.scheduleAnnounce();
    }, this.settings.announceIntervalMs);
  }
}

function validateOptions(options: TransactionParticipantOptions<unknown>): void {
  if (!PARTICIPANT_NAME_PATTERN.test(options.name ?? '')) throw new Error(`participant name ${JSON.stringify(options.name)} must match ${PARTICIPANT_NAME_PATTERN}`);
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) throw new Error('brokers must list at least one Kafka broker');
  if (!options.databaseUrl) throw new Error('databaseUrl is required');
  for (const handler of ['prepare', 'commit', 'abort'] as const) {
    if (typeof options.handlers?.[handler] !== 'function') throw new Error(`handlers.${handler} must be a function`);
  }
  const positive = ['announceIntervalMs', 'queryIntervalMs', 'sessionTimeoutMs', 'topicPartitions', 'partitionsConsumedConcurrently', 'poolSize', 'startTimeoutMs', 'terminationGraceMs', 'collectTimeoutMs'] as const;
  for (const key of positive) {
    const value = options[key];
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) throw new Error(`${key} must be a positive integer`);
  }
  if (options.topicPrefix !== undefined && !/^[A-Za-z0-9._-]+$/.test(options.topicPrefix)) throw new Error('topicPrefix may only hold letters, digits, ".", "_" and "-"');
}

function definedOnly(options: TransactionParticipantOptions<unknown>): Partial<typeof DEFAULTS> {
  const picked: Partial<Record<keyof typeof DEFAULTS, unknown>> = {};
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    if (options[key] !== undefined) picked[key] = options[key];
  }
  return picked as Partial<typeof DEFAULTS>;
}

function consoleLogger(name: string): ParticipantLogger {
  const prefix = `[participant ${name}]`;
  return {
    info: (message) => console.log(`${prefix} ${message}`),
    warn: (message) => console.warn(`${prefix} ${message}`),
    error: (message) => console.error(`${prefix} ${message}`),
  };
}
