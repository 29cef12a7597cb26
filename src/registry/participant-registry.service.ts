/**
 * Who may take part in a transaction. Participants announce themselves over Kafka
 * (AnnouncementConsumer); every announcement is recorded in Postgres so that all coordinator
 * replicas share one view. A participant that stops announcing for `participantTtlMs` is
 * reported to listeners, so transactions waiting for its vote abort at once instead of
 * waiting for their prepare timeout.
 *
 * Only the database's clock says when a participant was seen: the upsert stamps `now()` and
 * every read returns the age `now() - last_seen_at` computed there. Between reads the cache
 * adds the time elapsed on this process's monotonic clock, so nothing ever compares the
 * database's clock with this host's (or with the participant's).
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { AnnounceBody } from '../transport/kafka/envelope';

export interface RegisteredParticipant {
  readonly name: string;
  readonly protocols: readonly string[];
  readonly topic: string;
  readonly instanceId: string;
  readonly firstSeenAt: Date;
  /** The database's clock when the newest announcement was recorded. */
  readonly lastSeenAt: Date;
  readonly live: boolean;
}

export type Availability = { readonly ok: true; readonly participant: RegisteredParticipant } | { readonly ok: false; readonly reason: 'unknown' | 'stale' | 'protocol' };

type DownListener = (name: string) => void;

interface Row {
  readonly name: string;
  readonly protocols: string[];
  readonly topic: string;
  readonly instanceId: string;
  readonly firstSeenAt: Date;
  readonly lastSeenAt: Date;
  /** now() - last_seen_at, by the database, when the row was read. */
  readonly ageMs: number;
}

interface Entry extends Row {
  /** performance.now() when the row was read. */
  readonly readAt: number;
}

const COLUMNS = `name, protocols, topic, instance_id AS "instanceId", first_seen_at AS "firstSeenAt", last_seen_at AS "lastSeenAt",
  (extract(epoch FROM now() - last_seen_at) * 1000)::float8 AS "ageMs"`;

@Injectable()
export class ParticipantRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ParticipantRegistry.name);
  private readonly cache = new Map<string, Entry>();
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

  /** Records that `body`'s participant announced itself just now. */
  recordAnnouncement(body: AnnounceBody): Promise<void> {
    return this.recordAnnouncements([body]);
  }

  /**
   * Records a batch of announcements in one statement, each participant's last one winning;
   * all are stamped with the database's `now()`, the moment they were read.
   */
  async recordAnnouncements(bodies: readonly AnnounceBody[]): Promise<void> {
    const newest = new Map(bodies.map((b) => [b.name, { name: b.name, protocols: b.protocols, topic: b.topic, instance_id: b.instanceId }]));
    if (newest.size === 0) return;
    const rows: Row[] = await this.dataSource.query(
      `INSERT INTO participants AS p (name, protocols, topic, instance_id, last_seen_at)
       SELECT a.name, ARRAY(SELECT jsonb_array_elements_text(a.protocols)), a.topic, a.instance_id, now()
         FROM jsonb_to_recordset($1::jsonb) AS a(name text, protocols jsonb, topic text, instance_id text)
       ON CONFLICT (name) DO UPDATE SET protocols = EXCLUDED.protocols, topic = EXCLUDED.topic, instance_id = EXCLUDED.instance_id,
         last_seen_at = GREATEST(p.last_seen_at, EXCLUDED.last_seen_at)
       RETURNING ${COLUMNS}`,
      [JSON.stringify([...newest.values()])],
    );
    this.store(rows);
    for (const row of rows) {
      if (this.reportedDown.delete(row.name)) this.logger.log(`participant ${row.name} is announcing again`);
    }
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

  private view(entry: Entry): RegisteredParticipant {
    const { name, protocols, topic, instanceId, firstSeenAt, lastSeenAt } = entry;
    return { name, protocols, topic, instanceId, firstSeenAt, lastSeenAt, live: this.isLive(entry) };
  }

  /** The database's age of the row when read, plus the time since on this process's monotonic clock. */
  private isLive(entry: Entry): boolean {
    return entry.ageMs + (performance.now() - entry.readAt) <= this.config.participantTtlMs;
  }

  private async refresh(): Promise<void> {
    this.store(await this.dataSource.query<Row[]>(`SELECT ${COLUMNS} FROM participants`));
  }

  private store(rows: readonly Row[]): void {
    const readAt = performance.now();
    for (const row of rows) this.cache.set(row.name, { ...row, ageMs: Number(row.ageMs), readAt });
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
      this.logger.warn(`participant ${entry.name} stopped announcing (last seen ${new Date(entry.lastSeenAt).toISOString()} by the database clock)`);
      for (const listener of this.listeners) listener(entry.name);
    }
  }
}
