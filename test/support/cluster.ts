/**
 * A whole deployment for one end-to-end test file: a coordinator and the three example
 * services as separate processes, each with its own database, on the real Postgres and
 * Kafka, isolated from other test files by a topic prefix and database names of their own.
 */
import { Client } from 'pg';
import { freshDatabase, kafkaBrokers, uniqueSuffix } from './infra';
import { ManagedProcess, startNodeProcess, waitUntil } from './processes';

export const SERVICES = ['inventory', 'payments', 'orders'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
}

export interface ClusterOptions {
  readonly inventorySeed?: string;
  readonly paymentsSeed?: string;
  readonly coordinatorEnv?: Record<string, string>;
  /** Which example services to start; all three unless given. */
  readonly services?: readonly ServiceName[];
  /** Topic prefix and database name prefix; unique per instance unless given. */
  readonly prefix?: string;
  /** Coordinator replicas to start; 1 unless given. */
  readonly replicas?: number;
  /** Extra environment for every process (coordinator and services). */
  readonly processEnv?: Record<string, string>;
  /** HTTP port of the coordinator; any free port unless given. */
  readonly port?: number;
  /**
   * Paxos Commit: every replica is an acceptor with a fresh database of its own
   * (ACCEPTOR_DATABASE_URL), PAXOS_ACCEPTORS names all replicas and PAXOS_F = (replicas - 1) / 2.
   */
  readonly paxosCommit?: boolean;
  /** Extra environment for one replica only, by index (a failpoint for the first leader, say). */
  readonly replicaEnv?: Readonly<Record<number, Record<string, string>>>;
  /**
   * Admin URL of the Postgres server that holds every database of this cluster; the shared
   * test server (DATABASE_URL) unless given. A test that restarts Postgres brings its own.
   */
  readonly databaseUrl?: string;
}

export class Cluster {
  readonly prefix: string;
  readonly databases = {} as Record<'coordinator' | ServiceName, string>;
  /** Coordinator replicas by index; replica i has COORDINATOR_ID coordinator-(i+1). */
  readonly coordinators: (ManagedProcess | undefined)[] = [];
  readonly urls: string[] = [];
  coordinator: ManagedProcess | undefined;
  baseUrl = '';
  readonly services = new Map<ServiceName, ManagedProcess>();
  /** Acceptor database of replica i, when `paxosCommit` is set. */
  readonly acceptorDatabases: string[] = [];
  private restarts = 0;

  constructor(readonly options: ClusterOptions = {}) {
    this.prefix = options.prefix ?? `t${uniqueSuffix()}`;
  }

  async start(): Promise<void> {
    const server = this.options.databaseUrl;
    for (const name of ['coordinator', ...SERVICES] as const) this.databases[name] = await freshDatabase(`${this.prefix}_${name}`, server);
    if (this.options.paxosCommit) {
      for (let i = 0; i < (this.options.replicas ?? 1); i++) this.acceptorDatabases[i] = await freshDatabase(`${this.prefix}_acceptor_${i + 1}`, server);
    }
    for (let i = 0; i < (this.options.replicas ?? 1); i++) await this.startCoordinator(this.options.coordinatorEnv, i);
    if ((this.options.replicas ?? 1) > 1) await this.waitForPartitions();
    for (const name of this.options.services ?? SERVICES) await this.startService(name);
  }

  async startCoordinator(extraEnv: Record<string, string> = {}, index = 0): Promise<ManagedProcess> {
    const coordinator = startNodeProcess(`${this.prefix}-coordinator-${index + 1}-${this.restarts++}`, 'src/main.js', {
      PORT: String(this.options.port ? this.options.port + index : 0),
      DATABASE_URL: this.databases.coordinator,
      KAFKA_BROKERS: kafkaBrokers().join(','),
      KAFKA_TOPIC_PREFIX: this.prefix,
      COORDINATOR_ID: `coordinator-${index + 1}`,
      LEASE_DURATION_MS: '2000',
      KAFKA_SESSION_TIMEOUT_MS: '3000',
      RESEND_INTERVAL_MS: '500',
      PARTICIPANT_TTL_MS: '4000',
      ...this.options.processEnv,
      ...this.paxosCommitEnv(index),
      ...this.options.replicaEnv?.[index],
      ...extraEnv,
    });
    this.coordinators[index] = coordinator;
    const [, port] = await coordinator.waitForOutput(/listening on port (\d+)/, 90_000);
    this.urls[index] = `http://127.0.0.1:${port}`;
    if (index === 0) {
      this.coordinator = coordinator;
      this.baseUrl = this.urls[0];
    }
    await waitUntil('coordinator health and partitions', async () => {
      const { status, body } = await this.apiOn(index, 'GET', '/health');
      return status === 200 && body.partitions.length > 0;
    }, 60_000);
    return coordinator;
  }

  private paxosCommitEnv(index: number): Record<string, string> {
    if (!this.options.paxosCommit) return {};
    const replicas = this.options.replicas ?? 1;
    if (replicas % 2 === 0) throw new Error(`paxos-commit needs 2F+1 acceptor replicas, an odd number; got ${replicas}`);
    return {
      ACCEPTOR_DATABASE_URL: this.acceptorDatabases[index],
      PAXOS_ACCEPTORS: Array.from({ length: replicas }, (_, i) => `coordinator-${i + 1}`).join(','),
      PAXOS_F: String(Math.floor((replicas - 1) / 2)),
    };
  }

  /** Resolves once every live replica holds a share of the partitions and none is held twice. */
  async waitForPartitions(): Promise<void> {
    await waitUntil('partitions spread over the replicas', async () => {
      const held: number[] = [];
      for (let i = 0; i < this.coordinators.length; i++) {
        if (!this.isRunning(i)) continue;
        const { body } = await this.apiOn(i, 'GET', '/health');
        if (!body.partitions?.length) return false;
        held.push(...body.partitions);
      }
      return new Set(held).size === held.length;
    }, 60_000);
  }

  isRunning(index: number): boolean {
    const child = this.coordinators[index]?.child;
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** Sends the request to replica `index`. */
  apiOn<T = any>(index: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    return this.request(this.urls[index], method, path, body, headers);
  }

  /** Makes replica `index` the one `api()` talks to. */
  use(index: number): void {
    this.coordinator = this.coordinators[index];
    this.baseUrl = this.urls[index];
  }

  async startService(name: ServiceName): Promise<ManagedProcess> {
    const service = startNodeProcess(`${this.prefix}-${name}-${this.restarts++}`, `examples/${name}/main.js`, {
      DATABASE_URL: this.databases[name],
      KAFKA_BROKERS: kafkaBrokers().join(','),
      KAFKA_TOPIC_PREFIX: this.prefix,
      PARTICIPANT_NAME: name,
      INVENTORY_SEED: this.options.inventorySeed ?? 'sku-1:100,sku-2:5',
      PAYMENTS_SEED: this.options.paymentsSeed ?? 'acct-1:100000,acct-2:100',
      KAFKA_SESSION_TIMEOUT_MS: '3000',
      ANNOUNCE_INTERVAL_MS: '500',
      ...this.options.processEnv,
    });
    this.services.set(name, service);
    await this.waitForLive(name);
    return service;
  }

  async waitForLive(name: string): Promise<void> {
    await waitUntil(`${name} to announce itself`, async () => {
      const { body } = await this.api<{ name: string; live: boolean }[]>('GET', '/v1/participants');
      return body.some((p) => p.name === name && p.live);
    }, 60_000);
  }

  api<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    return this.request(this.baseUrl, method, path, body, headers);
  }

  private async request<T>(baseUrl: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: keep the text.
    }
    return { status: response.status, body: parsed as T };
  }

  /** Runs a query against one service's own database. */
  async query<T = any>(name: ServiceName | 'coordinator', sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: this.databases[name] });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.stop()));
    await Promise.all(this.coordinators.map((c) => c?.stop()));
  }
}
