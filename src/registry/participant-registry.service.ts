/**
 * Who may take part in a transaction. Participants announce themselves over Kafka; every
 * announcement is recorded in Postgres so that all coordinator replicas share one view,
 * whichever of them consumed it. A participant that stops announcing for `participantTtlMs`
 * is reported to listeners, so transactions waiting for its vote abort at once instead of
 * waiting for their prepare timeout.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { ParticipantRegistrationEntity } from '../decision-log/participant-registration.entity';
import { AnnounceBody } from '../transport/kafka/envelope';

export interface RegisteredParticipant {
  readonly name: string;
  readonly protocols: readonly string[];
  readonly topic: string;
  readonly instanceId: string;
  readonly firstSeenAt: Date;
  readonly lastSeenAt: Date;
  readonly live: boolean;
}

export type Availability = { readonly ok: true; readonly participant: RegisteredParticipant } | { readonly ok: false; readonly reason: 'unknown' | 'stale' | 'protocol' };

type DownListener = (name: string) => void;

@Injectable()
export class ParticipantRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ParticipantRegistry.name);
  private readonly cache = new Map<string, ParticipantRegistrationEntity>();
  private readonly listeners: DownListener[] = [];
  private readonly reportedDown = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.sweep(), Math.max(50, Math.floor(this.config.participantTtlMs / 4)));
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  onParticipantDown(listener: DownListener): void {
    this.listeners.push(listener);
  }

  /**
   * Records an announcement as seen when it was sent (never later than now), so a replayed
   * old announcement cannot make a participant that has since died look alive.
   */
  async recordAnnouncement(body: AnnounceBody, sentAt: string): Promise<void> {
    const sent = Date.parse(sentAt);
    const seenAt = new Date(Number.isNaN(sent) ? Date.now() : Math.min(sent, Date.now()));
    const rows: ParticipantRegistrationEntity[] = await this.dataSource.query(
      `INSERT INTO participants AS p (name, protocols, topic, instance_id, last_seen_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET protocols = $2, topic = $3, instance_id = $4, last_seen_at = GREATEST(p.last_seen_at, $5)
       RETURNING name, protocols, topic, instance_id AS "instanceId", first_seen_at AS "firstSeenAt", last_seen_at AS "lastSeenAt"`,
      [body.name, body.protocols, body.topic, body.instanceId, seenAt],
    );
    const row = rows[0];
    if (this.isLive(row) && this.reportedDown.delete(row.name)) this.logger.log(`participant ${row.name} is announcing again`);
    this.cache.set(row.name, row);
  }

  /** Whether `name` may be named in a new transaction of `protocol`. */
  async availability(name: string, protocol: string): Promise<Availability> {
    let entry = this.cache.get(name);
    if (!entry || !this.isLive(entry)) {
      await this.refresh();
      entry = this.cache.get(name);
    }
    if (!entry) return { ok: false, reason: 'unknown' };
    if (!this.isLive(entry)) return { ok: false, reason: 'stale' };
    if (!entry.protocols.includes(protocol)) return { ok: false, reason: 'protocol' };
    return { ok: true, participant: this.view(entry) };
  }

  /**
   * The process `name` announced last (from the cache, at most a sweep old). A different
   * instance than before means the participant restarted in between: to 3PC's failure
   * detector it failed during whatever it was doing, even if it is announcing again.
   */
  instanceOf(name: string): string | undefined {
    return this.cache.get(name)?.instanceId;
  }

  topicOf(name: string): string | undefined {
    return this.cache.get(name)?.topic;
  }

  async list(): Promise<RegisteredParticipant[]> {
    await this.refresh();
    return [...this.cache.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => this.view(e));
  }

  private view(entry: ParticipantRegistrationEntity): RegisteredParticipant {
    return { ...entry, live: this.isLive(entry) };
  }

  private isLive(entry: ParticipantRegistrationEntity): boolean {
    return Date.now() - new Date(entry.lastSeenAt).getTime() <= this.config.participantTtlMs;
  }

  private async refresh(): Promise<void> {
    const rows = await this.dataSource.getRepository(ParticipantRegistrationEntity).find();
    for (const row of rows) this.cache.set(row.name, row);
  }

  private async sweep(): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      this.logger.warn(`could not refresh the participant registry: ${(error as Error).message}`);
      return;
    }
    for (const entry of this.cache.values()) {
      if (this.isLive(entry) || this.reportedDown.has(entry.name)) continue;
      this.reportedDown.add(entry.name);
      this.logger.warn(`participant ${entry.name} stopped announcing (last seen ${new Date(entry.lastSeenAt).toISOString()})`);
      for (const listener of this.listeners) listener(entry.name);
    }
  }
}
