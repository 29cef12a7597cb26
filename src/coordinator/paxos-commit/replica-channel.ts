/**
 * This replica's inbound Paxos Commit traffic: its acceptor topic, its leader topic and the
 * heartbeat topic, read with kafkajs directly in a consumer group of its own.
 *
 * Nest's Kafka transport does not fit here. It joins every replica to one consumer group, so
 * Kafka gives each message to exactly one replica, which is right for the shared coordinator
 * topic and wrong for Paxos: every acceptor must see every phase 2a meant for it, and every
 * replica must see every heartbeat. So each replica reads topics addressed to it alone, plus
 * the heartbeat topic in full, under a group id that only it uses (which also keeps its place
 * across restarts, so that messages sent while it was down are read when it is back).
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Admin, Consumer, EachMessagePayload, Kafka, logLevel } from 'kafkajs';
import { AppConfig } from '../../config/app-config';
import { withTimeout } from '../../common/with-timeout';
import { APP_CONFIG } from '../../config/config.constants';
import { Envelope, parseEnvelope } from '../../transport/kafka/envelope';
import { KafkaPublisher } from '../../transport/kafka/kafka-publisher';
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
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: this.config.kafkaSessionTimeoutMs,
      heartbeatInterval: Math.max(100, Math.floor(this.config.kafkaSessionTimeoutMs / 5)),
      maxWaitTimeInMs: 20,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    consumer.on(consumer.events.CRASH, (event) => this.logger.error(`paxos consumer crashed (restart: ${event.payload.restart}): ${event.payload.error.message}`));
    await consumer.connect();
    // A new group starts at the beginning so that nothing sent before this replica first
    // joined is skipped; every handler is idempotent, and old heartbeats count as old.
    await consumer.subscribe({ topics: [this.topics.acceptor(me), this.topics.leader(me), this.topics.replicas], fromBeginning: true });
    await consumer.run({
      // Heartbeats, acceptor and leader traffic never wait behind one another.
      partitionsConsumedConcurrently: 2 * this.config.kafkaPartitions + 1,
      eachMessage: (payload) => this.onMessage(payload),
    });
    await withTimeout(joined, JOIN_TIMEOUT_MS, `replica ${me} did not join its consumer group`);
    this.driver.startScanning();
    this.logger.log(`paxos-commit replica ${me} of ${paxos.acceptors.join(',')} (F=${paxos.f}) is listening`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer?.disconnect().catch((error: Error) => this.logger.warn(`paxos consumer disconnect: ${error.message}`));
  }

  private async onMessage({ topic, message }: EachMessagePayload): Promise<void> {
    const parsed = parseEnvelope(message.value);
    const reason = !parsed.ok ? parsed.reason : parsed.envelope.protocol !== PAXOS_COMMIT ? `protocol ${parsed.envelope.protocol} does not belong on ${topic}` : await this.route(topic, parsed.envelope);
    if (reason === undefined) return;
    try {
      await this.publisher.deadLetter(topic, message.key, message.value, reason);
    } catch (error) {
      this.logger.error(`could not dead-letter a message from ${topic}: ${(error as Error).message}`);
    }
  }

  /**
   * Hands an envelope to its role; returns why it cannot be handled. The acceptor's step is
   * awaited, so its offset is committed only after its record is durable; the leader's
   * inputs are queued per transaction and not awaited, so a failpoint that stops one
   * transaction does not stop the topic.
   */
  private route(topic: string, envelope: Envelope): string | undefined | Promise<undefined> {
    const me = this.config.coordinatorId;
    if (topic === this.topics.replicas && envelope.type === 'HEARTBEAT') return void this.detector.heard(envelope);
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

  private warn(envelope: Envelope, error: Error): void {
    this.logger.warn(`transaction ${envelope.txnId}: ${envelope.type} from ${envelope.from} failed: ${error.message}`);
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
