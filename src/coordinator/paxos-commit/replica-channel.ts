/**
 * This replica's inbound Paxos Commit traffic: its acceptor topic and its leader topic on one
 * kafkajs consumer, and the heartbeat topic on a second one, each in a group of its own.
 *
 * Nest's Kafka transport does not fit here. It joins every replica to one consumer group, so
 * Kafka gives each message to exactly one replica, which is right for the shared coordinator
 * topic and wrong for Paxos: every acceptor must see every phase 2a meant for it, and every
 * replica must see every heartbeat. So each replica reads topics addressed to it alone under
 * a group id that only it uses (which also keeps its place across restarts, so that messages
 * sent while it was down are read when it is back).
 *
 * Heartbeats are the control plane: no acceptor write or leader step may delay them, or a
 * busy replica would suspect live ones. So they have their own consumer, which never commits
 * an offset and so always starts at the newest heartbeat: an old one read late would count as
 * fresh, because the detector judges a heartbeat by when it arrives.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Admin, Consumer, EachMessagePayload, Kafka, logLevel } from 'kafkajs';
import { AppConfig } from '../../config/app-config';
import { withTimeout } from '../../common/with-timeout';
import { APP_CONFIG } from '../../config/config.constants';
import { Envelope, parseEnvelope } from '../../transport/kafka/envelope';
import { KafkaPublisher } from '../../transport/kafka/kafka-publisher';
import { DEFAULT_RETRY_POLICY, handleOrReason } from '../../transport/kafka/message-failure';
import { PaxosCommitTopics, paxosCommitTopicsFor } from '../../transport/kafka/paxos-commit-topics';
import { PAXOS_COMMIT } from '../../transport/kafka/paxos-commit-wire';
import { AcceptorStore } from './acceptor-store';
import { AcceptorDriver } from './acceptor.driver';
import { FailureDetector } from './failure-detector';
import { LeaderDriver } from './leader.driver';
import { PaxosCommitDriver } from './paxos-commit.driver';

const JOIN_TIMEOUT_MS = 60_000;
/** Heartbeats matter only while fresh; a minute of them is plenty to keep. */
const HEARTBEAT_RETENTION_MS = '60000';

@Injectable()
export class ReplicaChannel implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ReplicaChannel.name);
  private consumer: Consumer | undefined;
  private heartbeats: Consumer | undefined;
  private readonly topics: PaxosCommitTopics;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly acceptor: AcceptorDriver,
    private readonly leader: LeaderDriver,
    private readonly detector: FailureDetector,
    private readonly driver: PaxosCommitDriver,
    private readonly publisher: KafkaPublisher,
    private readonly store: AcceptorStore,
  ) {
    this.topics = paxosCommitTopicsFor(config.topicPrefix);
  }

  async onModuleInit(): Promise<void> {
    const paxos = this.config.paxosCommit;
    if (!paxos) return;
    const me = this.config.coordinatorId;
    const kafka = new Kafka({ clientId: `coordinator-${me}-paxos`, brokers: [...this.config.kafkaBrokers], logLevel: logLevel.WARN });
    const groupId = `${this.config.topicPrefix}.replica.${me}`;
    await this.ensureTopics(kafka.admin(), paxos.acceptors);
    // The acceptor answers nothing before its database is open.
    await this.store.opened;
    if (this.store.fresh) await this.refuseAmnesia(kafka.admin(), groupId);
    this.heartbeats = this.newConsumer(kafka, `${groupId}.heartbeats`);
    const heartbeatsJoined = joinedGroup(this.heartbeats);
    await this.heartbeats.connect();
    await this.heartbeats.subscribe({ topics: [this.topics.replicas], fromBeginning: false });
    await this.heartbeats.run({ autoCommit: false, eachMessage: (payload) => this.onHeartbeat(payload) });

    const consumer = this.newConsumer(kafka, groupId);
    this.consumer = consumer;
    const joined = joinedGroup(consumer);
    await consumer.connect();
    // A new group starts at the beginning so that nothing sent before this replica first
    // joined is skipped; every handler is idempotent.
    await consumer.subscribe({ topics: [this.topics.acceptor(me), this.topics.leader(me)], fromBeginning: true });
    await consumer.run({
      // Acceptor and leader traffic never wait behind one another.
      partitionsConsumedConcurrently: 2 * this.config.kafkaPartitions,
      eachMessage: (payload) => this.onMessage(payload),
    });
    await withTimeout(Promise.all([joined, heartbeatsJoined]), JOIN_TIMEOUT_MS, `replica ${me} did not join its consumer groups`);
    this.driver.startScanning();
    this.logger.log(`paxos-commit replica ${me} of ${paxos.acceptors.join(',')} (F=${paxos.f}) is listening`);
  }

  async onApplicationShutdown(): Promise<void> {
    for (const consumer of [this.heartbeats, this.consumer]) {
      await consumer?.disconnect().catch((error: Error) => this.logger.warn(`paxos consumer disconnect: ${error.message}`));
    }
  }

  private newConsumer(kafka: Kafka, groupId: string): Consumer {
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: this.config.kafkaSessionTimeoutMs,
      heartbeatInterval: Math.max(100, Math.floor(this.config.kafkaSessionTimeoutMs / 5)),
      maxWaitTimeInMs: 20,
      allowAutoTopicCreation: false,
    });
    consumer.on(consumer.events.CRASH, (event) => this.logger.error(`paxos consumer ${groupId} crashed (restart: ${event.payload.restart}): ${event.payload.error.message}`));
    return consumer;
  }

  /** Nothing here awaits anything: a heartbeat only updates the detector's table. */
  private async onHeartbeat({ topic, message }: EachMessagePayload): Promise<void> {
    const parsed = parseEnvelope(message.value);
    if (parsed.ok && parsed.envelope.type === 'HEARTBEAT' && parsed.envelope.protocol === PAXOS_COMMIT) return this.detector.heard(parsed.envelope);
    await this.publisher.deadLetter(topic, message.key, message.value, parsed.ok ? `${parsed.envelope.type} (${parsed.envelope.protocol}) is not expected on ${topic}` : parsed.reason);
  }

  /**
   * A message that fails because of itself is dead-lettered; an outage is retried a few times
   * first (message-failure.ts). One that cannot even be dead-lettered stays unconsumed: the
   * error goes back to kafkajs, which reads it again.
   */
  private async onMessage({ topic, message }: EachMessagePayload): Promise<void> {
    const parsed = parseEnvelope(message.value);
    const reason = !parsed.ok
      ? parsed.reason
      : parsed.envelope.protocol !== PAXOS_COMMIT
        ? `protocol ${parsed.envelope.protocol} does not belong on ${topic}`
        : await handleOrReason(() => this.route(topic, parsed.envelope), {
            ...DEFAULT_RETRY_POLICY,
            onRetry: (attempt, error) => this.warn(parsed.envelope, error as Error, `attempt ${attempt}, retrying`),
          });
    if (reason !== undefined) await this.publisher.deadLetter(topic, message.key, message.value, reason);
  }

  /**
   * Hands an envelope to its role; returns why it cannot be handled. The acceptor's step is
   * awaited, so its offset is committed only after its record is durable; the leader's
   * inputs are queued per transaction and not awaited, so a failpoint that stops one
   * transaction does not stop the topic.
   */
  private route(topic: string, envelope: Envelope): string | undefined | Promise<undefined> {
    const me = this.config.coordinatorId;
    if (topic === this.topics.acceptor(me)) {
      if (envelope.type === 'PHASE2A' || envelope.type === 'PHASE1A') return this.acceptor.handle(envelope).then(() => undefined);
      if (envelope.type === 'QUERY') return void this.driver.queried(envelope.txnId, envelope.from).catch((e: Error) => this.warn(envelope, e));
    }
    if (topic === this.topics.leader(me)) {
      if (envelope.type === 'PHASE1B' || envelope.type === 'PHASE2B') return void this.leader.deliver(envelope);
      if (envelope.type === 'HANDOVER') return void this.driver.handedOver(envelope.txnId).catch((e: Error) => this.warn(envelope, e));
    }
    return `${envelope.type} is not expected on ${topic}`;
  }

  private warn(envelope: Envelope, error: Error, note = ''): void {
    this.logger.warn(`transaction ${envelope.txnId}: ${envelope.type} from ${envelope.from} failed${note ? ` (${note})` : ''}: ${error.message}`);
  }

  /**
   * An acceptor must never forget a promise. A brand-new acceptor database under an id whose
   * consumer group has already read its topic means the old database was lost or swapped
   * for an empty one; answering now could contradict what it promised before, so it refuses.
   */
  private async refuseAmnesia(admin: Admin, groupId: string): Promise<void> {
    await admin.connect();
    try {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [this.topics.acceptor(this.config.coordinatorId)] });
      if (offsets?.partitions.some((p) => Number(p.offset) >= 0)) {
        throw new Error(
          `acceptor ${this.config.coordinatorId} starts with an empty ACCEPTOR_DATABASE_URL, but it has served before (group ${groupId} has offsets): ` +
            'its promises are lost, and rejoining under the same id would break Paxos safety. Restore its database, or give the replica a new id in PAXOS_ACCEPTORS.',
        );
      }
    } finally {
      await admin.disconnect();
    }
  }

  private async ensureTopics(admin: Admin, acceptors: readonly string[]): Promise<void> {
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const pointToPoint = acceptors.flatMap((id) => [this.topics.acceptor(id), this.topics.leader(id)]).filter((t) => !existing.has(t));
      const wanted = pointToPoint.map((topic) => ({ topic, numPartitions: this.config.kafkaPartitions }));
      if (!existing.has(this.topics.replicas)) {
        const configEntries = [{ name: 'retention.ms', value: HEARTBEAT_RETENTION_MS }, { name: 'segment.ms', value: HEARTBEAT_RETENTION_MS }];
        wanted.push({ topic: this.topics.replicas, numPartitions: 1, configEntries } as (typeof wanted)[number]);
      }
      if (wanted.length === 0) return;
      try {
        await admin.createTopics({ waitForLeaders: true, topics: wanted });
      } catch (error) {
        // Replicas start together and race to create the same topics; only a missing one is a failure.
        const now = new Set(await admin.listTopics());
        if (wanted.some((w) => !now.has(w.topic))) throw error;
      }
    } finally {
      await admin.disconnect();
    }
  }
}

function joinedGroup(consumer: Consumer): Promise<void> {
  return new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
}
