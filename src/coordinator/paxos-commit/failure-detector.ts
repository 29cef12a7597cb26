/**
 * The failure detector that picks the Paxos Commit leader (G&L section 4: "the leader is
 * selected by some leader-election algorithm"; safety never depends on it). Every replica
 * publishes a heartbeat on `P.replicas` every `heartbeatIntervalMs` and reads everyone's; a
 * replica silent for `suspectAfterMs` is suspected, and the leader is the first replica of
 * PAXOS_ACCEPTORS that is not. It is eventually perfect in the usual way: it starts by
 * trusting everyone, may suspect a slow replica or trust a dead one for a while, and once
 * heartbeats flow it settles on one leader that every live replica agrees on.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { Envelope } from '../../transport/kafka/envelope';
import { KafkaPublisher } from '../../transport/kafka/kafka-publisher';
import { paxosCommitTopicsFor } from '../../transport/kafka/paxos-commit-topics';
import { PAXOS_COMMIT } from '../../transport/kafka/paxos-commit-wire';

/** The detector's bookkeeping, apart from timers and Kafka so that it can be tested alone. */
export class HeartbeatTable {
  private readonly lastSeen = new Map<string, number>();

  constructor(
    private readonly self: string,
    private readonly replicas: readonly string[],
    private readonly suspectAfterMs: number,
    private readonly startedAt: number,
  ) {}

  /**
   * Records a heartbeat as seen when it was sent, never later than now: a heartbeat read
   * late (a replayed backlog after a restart) must not make a dead replica look alive.
   */
  heard(replica: string, sentAt: number, now: number): void {
    if (!this.replicas.includes(replica)) return;
    const seen = Number.isNaN(sentAt) ? now : Math.min(sentAt, now);
    // Never below the start: an old heartbeat from the backlog must not end the initial trust early.
    this.lastSeen.set(replica, Math.max(this.lastSeen.get(replica) ?? this.startedAt, seen));
  }

  /** Everyone is trusted at first, until they have had `suspectAfterMs` to show themselves. */
  trusts(replica: string, now: number): boolean {
    if (replica === this.self) return true;
    return now - (this.lastSeen.get(replica) ?? this.startedAt) <= this.suspectAfterMs;
  }

  leader(now: number): string {
    return this.replicas.find((r) => this.trusts(r, now)) ?? this.self;
  }
}

export type LeaderListener = (leader: string) => void;

@Injectable()
export class FailureDetector implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(FailureDetector.name);
  private table: HeartbeatTable | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current = '';
  private readonly listeners: LeaderListener[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly publisher: KafkaPublisher,
  ) {}

  onModuleInit(): void {
    const paxos = this.config.paxosCommit;
    if (!paxos) return;
    this.table = new HeartbeatTable(this.config.coordinatorId, paxos.acceptors, paxos.suspectAfterMs, Date.now());
    this.current = this.table.leader(Date.now());
    this.timer = setInterval(() => this.tick(), paxos.heartbeatIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Whom this replica trusts to lead now. */
  leader(): string {
    return this.current;
  }

  isLeader(): boolean {
    return this.current === this.config.coordinatorId;
  }

  trusts(replica: string): boolean {
    return this.table?.trusts(replica, Date.now()) ?? false;
  }

  onLeaderChange(listener: LeaderListener): void {
    this.listeners.push(listener);
  }

  heard(envelope: Envelope): void {
    if (envelope.type !== 'HEARTBEAT' || !this.table) return;
    this.table.heard(envelope.from, Date.parse(envelope.sentAt), Date.now());
    this.evaluate();
  }

  private tick(): void {
    this.evaluate();
    const heartbeat: Envelope = {
      v: 1,
      type: 'HEARTBEAT',
      txnId: '',
      protocol: PAXOS_COMMIT,
      from: this.config.coordinatorId,
      epoch: 0,
      sentAt: new Date().toISOString(),
      body: { leader: this.current },
    };
    const topic = paxosCommitTopicsFor(this.config.topicPrefix).replicas;
    this.publisher.publish([{ topic, envelope: heartbeat }]).catch((error: Error) => this.logger.warn(`heartbeat not sent: ${error.message}`));
  }

  private evaluate(): void {
    if (!this.table) return;
    const leader = this.table.leader(Date.now());
    if (leader === this.current) return;
    this.logger.log(`leader is now ${leader} (was ${this.current})`);
    this.current = leader;
    for (const listener of this.listeners) listener(leader);
  }
}
