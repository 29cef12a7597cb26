/**
 * What a service embeds to take part in two-phase commit: it consumes the coordinator's
 * orders on `<prefix>.rm.<name>`, runs the service's handlers inside its own database
 * transactions, keeps the participant log, answers on `<prefix>.coordinator`, announces
 * itself on `<prefix>.participants`, and on start asks about transactions left in doubt.
 * docs/protocol.md is the wire contract it implements.
 */
import { randomUUID } from 'node:crypto';
import { Consumer, EachMessagePayload } from 'kafkajs';
import { Pool } from 'pg';
import { PARTICIPANT_NAME_PATTERN, parseEnvelope } from '../transport/kafka/envelope';
import { HEADER_TRACEPARENT, topicsFor } from '../transport/kafka/topics';
import { CoordinatorOrder, ParticipantDriver, errorMessage } from './participant.driver';
import { ParticipantKafkaTransport, headerText } from './participant-kafka.transport';
import { PostgresParticipantLog } from './participant-log.repository';
import { ParticipantLogger, TransactionParticipantOptions } from './participant-sdk.types';

const DEFAULTS = {
  topicPrefix: 'txn',
  announceIntervalMs: 1000,
  queryIntervalMs: 1000,
  sessionTimeoutMs: 10_000,
  topicPartitions: 6,
  partitionsConsumedConcurrently: 4,
  poolSize: 10,
  startTimeoutMs: 60_000,
};

type Status = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export class TransactionParticipant<P = unknown> {
  /** Distinguishes this process from earlier or parallel instances of the same participant. */
  readonly instanceId = randomUUID();
  readonly name: string;
  private readonly logger: ParticipantLogger;
  private readonly settings: typeof DEFAULTS;
  private readonly pool: Pool;
  private readonly transport: ParticipantKafkaTransport;
  private readonly driver: ParticipantDriver;
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
    });
    this.driver = new ParticipantDriver({
      name: options.name,
      handlers: options.handlers as TransactionParticipantOptions['handlers'],
      log: new PostgresParticipantLog(this.pool, options.name),
      publish: (replies) => this.transport.sendReplies(replies),
      queryIntervalMs: this.settings.queryIntervalMs,
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
      await this.transport.connect();
      await this.startConsumer();
      await this.driver.recover();
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
  const positive = ['announceIntervalMs', 'queryIntervalMs', 'sessionTimeoutMs', 'topicPartitions', 'partitionsConsumedConcurrently', 'poolSize', 'startTimeoutMs'] as const;
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

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
