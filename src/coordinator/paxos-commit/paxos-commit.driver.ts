/**
 * Paxos Commit as the rest of the coordinator sees it (ProtocolDriver), and the policy of
 * which replica runs which transaction. Any replica logs a transaction for the API; the leader
 * the failure detector trusts runs it. A replica that is not the leader hands the new
 * transaction over with a HANDOVER on the leader's topic, and the leader also scans the shared
 * log, so that a lost handover, or a leader that died, leaves nothing behind: a new leader
 * begins what nobody began, finishes what is decided, and takes over with a higher ballot
 * what a suspected (or too slow) leader was running. Acknowledgements arrive on the shared
 * coordinator topic and are recorded by whichever replica reads them.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Failpoints } from '../../common/failpoints';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { DecisionLogRepository } from '../../decision-log/decision-log.repository';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { TransactionEvents } from '../../telemetry/transaction-events';
import { Envelope } from '../../transport/kafka/envelope';
import { KafkaPublisher } from '../../transport/kafka/kafka-publisher';
import { KAFKA_TOPICS } from '../../transport/kafka/kafka.constants';
import { paxosCommitTopicsFor } from '../../transport/kafka/paxos-commit-topics';
import { PAXOS_COMMIT, outcomeEnvelope } from '../../transport/kafka/paxos-commit-wire';
import { Topics } from '../../transport/kafka/topics';
import { ProtocolDriver } from '../protocol-driver';
import { FailureDetector } from './failure-detector';
import { LeaderDriver } from './leader.driver';
import { PaxosCommitLog } from './paxos-commit-log';

@Injectable()
export class PaxosCommitDriver implements ProtocolDriver, OnApplicationShutdown {
  readonly protocol = PAXOS_COMMIT;
  /** Served only by replicas that are acceptors (ACCEPTOR_DATABASE_URL set). */
  readonly enabled: boolean;
  private readonly logger = new Logger(PaxosCommitDriver.name);
  private readonly expected = new Set<string>();
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private readonly failpoints: Failpoints;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KAFKA_TOPICS) private readonly topics: Topics,
    private readonly leader: LeaderDriver,
    private readonly detector: FailureDetector,
    private readonly log: PaxosCommitLog,
    private readonly txnLog: DecisionLogRepository,
    private readonly publisher: KafkaPublisher,
    private readonly registry: ParticipantRegistry,
    private readonly events: TransactionEvents,
  ) {
    this.enabled = config.paxosCommit !== undefined;
    this.failpoints = new Failpoints(config.failpoints);
    if (!this.enabled) return;
    detector.onLeaderChange((id) => {
      if (id === config.coordinatorId) void this.scan();
    });
    registry.onParticipantDown((rm) => this.participantDown(rm));
  }

  /** Starts the leader's periodic scan; called once this replica's topics are being read. */
  startScanning(): void {
    const interval = this.config.paxosCommit?.retryIntervalMs ?? 1000;
    this.scanTimer = setInterval(() => {
      if (this.detector.isLeader()) void this.scan();
    }, interval);
    this.scanTimer.unref();
    if (this.detector.isLeader()) void this.scan();
  }

  onApplicationShutdown(): void {
    clearInterval(this.scanTimer);
  }

  expect(txnId: string): void {
    this.expected.add(txnId);
  }

  unexpect(txnId: string): void {
    this.expected.delete(txnId);
  }

  /** Never rejects: whatever fails here, the leader's scan of the shared log finds the transaction. */
  async begin(txn: TransactionEntity): Promise<void> {
    this.expected.delete(txn.id);
    await this.failpoints.reach('after-transaction-logged', txn.id);
    try {
      if (this.detector.isLeader()) await this.leader.start(txn);
      else await this.handOver(txn.id);
    } catch (error) {
      this.logger.warn(`transaction ${txn.id}: could not begin here, the leader's scan will: ${(error as Error).message}`);
    }
  }

  /** A transaction found unfinished by the lease takeover or a restart: the leader decides what it needs. */
  async adopt(txn: TransactionEntity): Promise<void> {
    try {
      if (this.detector.isLeader()) await this.consider(txn);
      else await this.handOver(txn.id);
    } catch (error) {
      this.logger.warn(`transaction ${txn.id}: could not adopt it here, the leader's scan will: ${(error as Error).message}`);
    }
  }

  /** Partitions of the coordinator topic do not decide who runs a Paxos Commit transaction. */
  release(): number {
    return 0;
  }

  /** ACKs, and QUERYs from participants that ask on the coordinator topic. */
  async deliver(envelope: Envelope): Promise<boolean> {
    if (envelope.type === 'ACK') {
      await this.acked(envelope.txnId, envelope.from);
      return true;
    }
    if (envelope.type === 'QUERY') {
      await this.queried(envelope.txnId, envelope.from, true);
      return true;
    }
    return false;
  }

  isActive(txnId: string): boolean {
    return this.expected.has(txnId) || this.leader.isRunning(txnId);
  }

  activeCount(): number {
    return this.leader.runningCount();
  }

  /** Paxos Commit cannot simply log an abort; the closest is a higher ballot now, which aborts every instance without a vote. */
  async requestAbort(txnId: string, reason: string): Promise<void> {
    this.leader.ballotNow(txnId, reason);
  }

  /** A HANDOVER: another replica logged a transaction and trusts this one to lead it. */
  async handedOver(txnId: string): Promise<void> {
    const txn = await this.txnLog.findById(txnId);
    if (txn) await this.consider(txn);
  }

  /**
   * A participant in doubt asks every acceptor. The trusted leader answers (or starts running
   * the transaction); the others stay silent so that one question gets one answer. On the
   * shared topic only one replica reads it, so that one answers from the log.
   */
  async queried(txnId: string, rm: string, fromSharedTopic = false): Promise<void> {
    if (this.leader.isRunning(txnId)) return this.leader.query(txnId, rm);
    if (!fromSharedTopic && !this.detector.isLeader()) return;
    const txn = await this.txnLog.findById(txnId);
    if (!txn) return;
    if (txn.decision) {
      const envelope = outcomeEnvelope(txnId, txn.decision, this.config.coordinatorId);
      await this.publisher.publish([{ topic: this.registry.topicOf(rm) ?? this.topics.participant(rm), envelope }]);
      return;
    }
    if (this.detector.isLeader()) await this.consider(txn);
    else await this.handOver(txnId);
  }

  private async acked(txnId: string, rm: string): Promise<void> {
    const txn = await this.txnLog.findById(txnId);
    const participant = txn?.participants.find((p) => p.name === rm);
    if (!txn || !participant) return;
    const startedAt = new Date(txn.createdAt).getTime();
    if (!participant.ackedAt) {
      await this.txnLog.appendAck(txnId, rm);
      this.events.emitFact({ type: 'acked', participant: rm }, { txnId, protocol: PAXOS_COMMIT, startedAt });
    }
    if (await this.log.complete(txnId)) this.events.emitFact({ type: 'completed' }, { txnId, protocol: PAXOS_COMMIT, startedAt });
  }

  /**
   * Whether this replica should run `txn`, and how. A decided one only needs its outcome
   * delivered. An undecided one is begun if nobody began it, taken back if this replica ran
   * it before a restart, and taken over from another leader only once that leader is
   * suspected or the transaction is past its prepare timeout: a live leader that is merely
   * not trusted by everyone yet is left alone, so that a flapping detector does not make two
   * leaders duel (which would be safe, only slow).
   */
  private async consider(txn: TransactionEntity): Promise<void> {
    if (txn.completedAt || this.leader.isRunning(txn.id)) return;
    if (txn.decision) return this.leader.finishDecided(txn);
    const run = await this.log.findRun(txn.id);
    const me = this.config.coordinatorId;
    if (!run || run.leader === me || !this.detector.trusts(run.leader) || (await this.overdue(txn))) {
      await this.leader.start(txn);
    }
  }

  /** Past its prepare timeout and a retry interval more, measured by the database that stamped created_at. */
  private async overdue(txn: TransactionEntity): Promise<boolean> {
    const ageMs = await this.log.ageMs(txn.id);
    return ageMs !== null && ageMs > txn.timeoutMs + (this.config.paxosCommit?.retryIntervalMs ?? 1000);
  }

  private async handOver(txnId: string): Promise<void> {
    const leader = this.detector.leader();
    const envelope: Envelope = { v: 1, type: 'HANDOVER', txnId, protocol: PAXOS_COMMIT, from: this.config.coordinatorId, epoch: 0, sentAt: new Date().toISOString(), body: {} };
    try {
      await this.publisher.publish([{ topic: paxosCommitTopicsFor(this.config.topicPrefix).leader(leader), envelope }]);
    } catch (error) {
      // The leader's scan of the shared log finds the transaction anyway.
      this.logger.warn(`transaction ${txnId}: handing over to ${leader} failed: ${(error as Error).message}`);
    }
  }

  /** The leader's sweep of the shared log: every unfinished transaction it is not running. */
  private scan(): Promise<void> {
    this.scanning ??= this.scanOnce()
      .catch((error: Error) => this.logger.warn(`scan of undecided transactions failed: ${error.message}`))
      .finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    for (const id of await this.log.unfinishedIds()) {
      if (!this.detector.isLeader()) return;
      if (this.isActive(id)) continue;
      const txn = await this.txnLog.findById(id);
      if (txn) await this.consider(txn);
    }
  }

  /** A participant stopped announcing: undecided runs waiting for its vote start a ballot now instead of at the timeout. */
  private participantDown(rm: string): void {
    if (!this.detector.isLeader()) return;
    for (const txnId of this.leader.waitingFor(rm)) this.leader.ballotNow(txnId, `${rm} stopped announcing`);
  }
}
