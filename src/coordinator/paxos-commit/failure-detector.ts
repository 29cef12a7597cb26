/**
 * The failure detector that picks the Paxos Commit leader (G&L section 4: "the leader is
 * selected by some leader-election algorithm"; safety never depends on it). Every replica
 * publishes a heartbeat on `P.replicas` every `heartbeatIntervalMs` and reads everyone's on a
 * consumer of its own; a replica silent for its suspicion timeout is suspected, and the
 * leader is the first replica of PAXOS_ACCEPTORS that is not. It is eventually perfect in the
 * usual way (Chandra and Toueg's diamond-P): it starts by trusting everyone, and every time a
 * suspected replica turns out to be alive its timeout grows, so that after finitely many
 * mistakes it stops suspecting live replicas and every live replica agrees on one leader.
 *
 * Time is the receiver's monotonic clock only. A heartbeat counts when it arrives, never by
 * the sender's `sentAt`, so neither clock skew nor a starved host reading its backlog late can
 * make a live replica look dead. A replica whose own timer fires later than a suspicion
 * timeout cannot lead in time either; it stops claiming to, and lets the others take over.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { Envelope } from '../../transport/kafka/envelope';
import { KafkaPublisher } from '../../transport/kafka/kafka-publisher';
import { paxosCommitTopicsFor } from '../../transport/kafka/paxos-commit-topics';
import { PAXOS_COMMIT } from '../../transport/kafka/paxos-commit-wire';

export interface AdaptiveTimeout {
  /** A wrongly suspected replica's timeout grows by this factor... */
  readonly growth: number;
  /** ...up to this multiple of the configured one. */
  readonly maxFactor: number;
  /** After this long trusted without a break, a grown timeout shrinks by `growth` again. */
  readonly decayAfterMs: number;
}

interface Peer {
  lastHeard: number;
  incarnation?: string;
  timeoutMs: number;
  /** Since when it has been trusted without a break (or since its timeout last shrank). */
  trustedSince: number;
}

/** The detector's bookkeeping, apart from timers and Kafka so that it can be tested alone; `now` is always monotonic. */
export class HeartbeatTable {
  private readonly peers = new Map<string, Peer>();
  private readonly adaptive: AdaptiveTimeout;
  /** Until when this replica stepped down because its own ticks came too late. */
  private selfStepDownUntil = -Infinity;

  constructor(
    private readonly self: string,
    private readonly replicas: readonly string[],
    private readonly suspectAfterMs: number,
    startedAt: number,
    adaptive: Partial<AdaptiveTimeout> = {},
  ) {
    this.adaptive = { growth: 2, maxFactor: 8, decayAfterMs: 20 * suspectAfterMs, ...adaptive };
    for (const replica of replicas) this.peers.set(replica, { lastHeard: startedAt, timeoutMs: suspectAfterMs, trustedSince: startedAt });
  }

  /**
   * A heartbeat from `replica` arrived at `now`; what it says about its own sending time is
   * ignored. A heartbeat from a new incarnation means the replica restarted: its silence was
   * a real crash, not a mistake, so its timeout goes back to the configured one.
   */
  heard(replica: string, now: number, incarnation?: string): void {
    const peer = this.peers.get(replica);
    if (!peer || replica === this.self) return;
    const { growth, maxFactor, decayAfterMs } = this.adaptive;
    const restarted = incarnation !== undefined && peer.incarnation !== undefined && incarnation !== peer.incarnation;
    if (incarnation !== undefined) peer.incarnation = incarnation;
    if (restarted) {
      peer.timeoutMs = this.suspectAfterMs;
      peer.trustedSince = now;
    } else if (now - peer.lastHeard > peer.timeoutMs) {
      // It was suspected and is alive after all: wait longer before suspecting it again.
      peer.timeoutMs = Math.min(peer.timeoutMs * growth, this.suspectAfterMs * maxFactor);
      peer.trustedSince = now;
    } else if (now - peer.trustedSince >= decayAfterMs && peer.timeoutMs > this.suspectAfterMs) {
      peer.timeoutMs = Math.max(this.suspectAfterMs, peer.timeoutMs / growth);
      peer.trustedSince = now;
    }
    peer.lastHeard = Math.max(peer.lastHeard, now);
  }

  /** How long `replica` may now stay silent before it is suspected. */
  timeoutOf(replica: string): number {
    return this.peers.get(replica)?.timeoutMs ?? this.suspectAfterMs;
  }

  /**
   * This replica's heartbeat timer fired `lateByMs` after it was due. Later than a suspicion
   * timeout means it cannot answer in time as a leader: it stops trusting itself (and sending
   * heartbeats) until it has been on time for a whole timeout again. Returns whether it is
   * stepped down now.
   */
  ticked(lateByMs: number, now: number): boolean {
    if (lateByMs > this.suspectAfterMs) this.selfStepDownUntil = now + this.suspectAfterMs;
    return this.steppedDown(now);
  }

  steppedDown(now: number): boolean {
    return now < this.selfStepDownUntil;
  }

  /** Everyone is trusted at first, until they have had a timeout to show themselves. */
  trusts(replica: string, now: number): boolean {
    if (replica === this.self) return !this.steppedDown(now);
    const peer = this.peers.get(replica);
    return peer !== undefined && now - peer.lastHeard <= peer.timeoutMs;
  }

  /** The first trusted replica; a replica that trusts nobody, itself included, falls back on itself. */
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
  private lastTick = 0;
  private readonly listeners: LeaderListener[] = [];
  private readonly incarnation = randomUUID();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly publisher: KafkaPublisher,
  ) {}

  onModuleInit(): void {
    const paxos = this.config.paxosCommit;
    if (!paxos) return;
    this.table = new HeartbeatTable(this.config.coordinatorId, paxos.acceptors, paxos.suspectAfterMs, performance.now());
    this.current = this.table.leader(performance.now());
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(paxos.heartbeatIntervalMs, paxos.suspectAfterMs), paxos.heartbeatIntervalMs);
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
    return this.table?.trusts(replica, performance.now()) ?? false;
  }

  onLeaderChange(listener: LeaderListener): void {
    this.listeners.push(listener);
  }

  heard(envelope: Envelope): void {
    if (envelope.type !== 'HEARTBEAT' || !this.table) return;
    this.table.heard(envelope.from, performance.now(), envelope.body.incarnation);
    this.evaluate();
  }

  private tick(intervalMs: number, suspectAfterMs: number): void {
    const now = performance.now();
    const lateByMs = now - this.lastTick - intervalMs;
    this.lastTick = now;
    if (!this.table) return;
    const steppedDown = this.table.ticked(lateByMs, now);
    if (steppedDown && lateByMs > suspectAfterMs) this.logger.warn(`heartbeat timer fired ${Math.round(lateByMs)} ms late: not claiming leadership until on time again`);
    this.evaluate();
    // Silence is the step-down: the others suspect this replica rather than hear it claim a lead it cannot keep.
    if (steppedDown) return;
    const heartbeat: Envelope = {
      v: 1,
      type: 'HEARTBEAT',
      txnId: '',
      protocol: PAXOS_COMMIT,
      from: this.config.coordinatorId,
      epoch: 0,
      sentAt: new Date().toISOString(),
      body: { leader: this.current, incarnation: this.incarnation },
    };
    const topic = paxosCommitTopicsFor(this.config.topicPrefix).replicas;
    this.publisher.publish([{ topic, envelope: heartbeat }]).catch((error: Error) => this.logger.warn(`heartbeat not sent: ${error.message}`));
  }

  private evaluate(): void {
    if (!this.table) return;
    const leader = this.table.leader(performance.now());
    if (leader === this.current) return;
    this.logger.log(`leader is now ${leader} (was ${this.current})`);
    this.current = leader;
    for (const listener of this.listeners) listener(leader);
  }
}
