/**
 * Environment of an example service, read and validated once at start: a bad value stops
 * the process with the variable's name. The names match the coordinator's configuration
 * where they mean the same thing (DATABASE_URL, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX, ...).
 */
export class ServiceConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ServiceConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface ServiceEnv {
  readonly databaseUrl: string;
  readonly kafkaBrokers: readonly string[];
  readonly topicPrefix: string;
  readonly participantName: string;
  readonly kafkaPartitions: number;
  readonly kafkaSessionTimeoutMs: number;
  readonly announceIntervalMs: number;
  readonly queryIntervalMs: number;
  readonly logLevel: 'info' | 'debug';
}

export function readServiceEnv(env: Env, serviceName: string): ServiceEnv {
  return {
    databaseUrl: postgresUrl(env, 'DATABASE_URL'),
    kafkaBrokers: brokers(env, 'KAFKA_BROKERS'),
    topicPrefix: matching(env, 'KAFKA_TOPIC_PREFIX', 'txn', /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "letters, digits, '.', '_' or '-'"),
    participantName: matching(env, 'PARTICIPANT_NAME', serviceName, /^[a-z0-9][a-z0-9_-]{0,62}$/, "lower-case letters, digits, '_' or '-'"),
    kafkaPartitions: integer(env, 'KAFKA_PARTITIONS', 6, 1, 1024),
    kafkaSessionTimeoutMs: integer(env, 'KAFKA_SESSION_TIMEOUT_MS', 10_000, 1000),
    announceIntervalMs: integer(env, 'ANNOUNCE_INTERVAL_MS', 1000, 10),
    queryIntervalMs: integer(env, 'QUERY_INTERVAL_MS', 1000, 10),
    logLevel: oneOf(env, 'LOG_LEVEL', ['info', 'debug'] as const, 'info'),
  };
}

export function required(env: Env, name: string): string {
  const raw = env[name];
  if (!raw) throw new ServiceConfigError(name, 'is required');
  return raw;
}

export function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ServiceConfigError(name, `must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = env[name] || fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new ServiceConfigError(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

function matching(env: Env, name: string, fallback: string, pattern: RegExp, described: string): string {
  const value = env[name] || fallback;
  if (!pattern.test(value)) throw new ServiceConfigError(name, `must be ${described} (at most 63), got ${JSON.stringify(value)}`);
  return value;
}

function postgresUrl(env: Env, name: string): string {
  const raw = required(env, name);
  let protocol: string;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') throw new ServiceConfigError(name, `must be a postgres:// URL, got ${JSON.stringify(raw)}`);
  return raw;
}

function brokers(env: Env, name: string): string[] {
  const list = required(env, name)
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean);
  if (list.length === 0) throw new ServiceConfigError(name, 'is empty');
  for (const broker of list) {
    if (!/^[^:\s]+:\d{1,5}$/.test(broker)) throw new ServiceConfigError(name, `must be a comma-separated list of host:port, got ${JSON.stringify(broker)}`);
  }
  return list;
}

/**
 * Parses a seed such as `sku-1:100,sku-2:50` into `{ 'sku-1': 100, 'sku-2': 50 }`; the
 * conservation check uses the same function so both read the seed identically.
 */
export function parseSeed(raw: string, variable = 'seed'): Record<string, number> {
  const seed: Record<string, number> = {};
  for (const item of raw.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^([A-Za-z0-9][A-Za-z0-9._-]*):(\d+)$/.exec(item);
    if (!match) throw new ServiceConfigError(variable, `must look like "id:amount,id:amount", got ${JSON.stringify(item)}`);
    if (match[1] in seed) throw new ServiceConfigError(variable, `names ${JSON.stringify(match[1])} twice`);
    const amount = Number(match[2]);
    if (!Number.isSafeInteger(amount)) throw new ServiceConfigError(variable, `amount for ${match[1]} is too large`);
    seed[match[1]] = amount;
  }
  return seed;
}

export function seedFrom(env: Env, name: string, fallback: string): Record<string, number> {
  return parseSeed(env[name] ?? fallback, name);
}
