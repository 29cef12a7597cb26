/**
 * The participant side of 3PC's failure detector. The termination protocol needs to know
 * which peers have crashed (to elect a recovery coordinator, and to stop waiting for a
 * state report), and 3PC is only safe when that knowledge is right. Participants already
 * announce themselves every `announceIntervalMs`; the coordinator's registry declares one
 * gone after `participantTtlMs` of silence. This detector applies the same rule from inside
 * each participant, so both sides share one synchrony assumption: a live participant
 * announces at least once per TTL. A peer whose process changed since a transaction began
 * restarted, so for that transaction it failed (it comes back only to ask for the outcome).
 */
import { Consumer, Kafka } from 'kafkajs';
import { parseEnvelope } from '../transport/kafka/envelope';
import { ParticipantLogger } from './participant-sdk.types';

export interface PeerDetector {
  /** The process `peer` announced last; undefined while it has not been heard from. */
  instanceOf(peer: string): string | undefined;
  /**
   * Whether `peer` counts as crashed: silent for longer than `ttlMs`, or running another
   * process than `instanceThen` (what it ran when the transaction began, if known).
   */
  suspects(peer: string, ttlMs: number, instanceThen: string | undefined): boolean;
}

interface Sighting {
  readonly instanceId: string;
  readonly lastSeenAt: number;
}

export class AnnouncementDetector implements PeerDetector {
  private readonly seen = new Map<string, Sighting>();
  private consumer: Consumer | undefined;
  /** Set once the consumer reads the topic; before that there is no evidence against anyone. */
  private listeningSince: number | undefined;
  /** The latest announcement heard from anyone, this participant's own included. */
  private newest = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    /** A group of this process alone: every process must see every announcement. */
    private readonly groupId: string,
    private readonly logger: ParticipantLogger,
  ) {}

  /** Starts listening in the background; suspicion begins only once it listens. */
  async start(): Promise<void> {
    const consumer = this.kafka.consumer({ groupId: this.groupId, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 50, allowAutoTopicCreation: false });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.listeningSince ??= Date.now();
    });
    await consumer.connect();
    // Only fresh announcements matter: a new group starts at the end of the topic.
    await consumer.subscribe({ topic: this.topic, fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const parsed = parseEnvelope(message.value ?? null);
        if (parsed.ok && parsed.envelope.type === 'ANNOUNCE') this.record(parsed.envelope.body.name, parsed.envelope.body.instanceId, parsed.envelope.sentAt);
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch((error: Error) => this.logger.warn(`peer detector disconnect: ${error.message}`));
  }

  instanceOf(peer: string): string | undefined {
    return this.seen.get(peer)?.instanceId;
  }

  /**
   * Silence counts only when the detector kept hearing others for a TTL after the peer's last
   * word: a detector that stopped hearing anyone (its consumer stalled, this process paused)
   * has no evidence and suspects nobody.
   */
  suspects(peer: string, ttlMs: number, instanceThen: string | undefined): boolean {
    if (this.listeningSince === undefined) return false;
    const sighting = this.seen.get(peer);
    if (sighting && instanceThen !== undefined && sighting.instanceId !== instanceThen) return true;
    const last = Math.max(sighting?.lastSeenAt ?? 0, this.listeningSince);
    return Date.now() - last > ttlMs && this.newest >= last + ttlMs;
  }

  /**
   * As the coordinator's registry does, an announcement counts as seen when it was sent
   * (never later than now), so a replayed old one cannot make a dead peer look alive.
   */
  record(name: string, instanceId: string, sentAt: string): void {
    const sent = Date.parse(sentAt);
    const at = Number.isNaN(sent) ? Date.now() : Math.min(sent, Date.now());
    const previous = this.seen.get(name);
    if (previous && previous.instanceId === instanceId && previous.lastSeenAt >= at) return;
    if (previous && previous.instanceId !== instanceId && previous.lastSeenAt > at) return;
    this.seen.set(name, { instanceId, lastSeenAt: at });
    this.newest = Math.max(this.newest, at);
  }
}
