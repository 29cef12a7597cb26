/**
 * The coordinator's configuration, read from the environment once at start and validated
 * there, so that a bad value stops the process with the variable's name instead of
 * surfacing later as a strange failure. Nothing else in the coordinator reads process.env.
 */
import { hostname } from 'node:os';
import { FAILPOINTS, Failpoint } from '../common/failpoints';
import { ConfigError, Env, ID_PATTERN, integer, postgresUrl, required } from './env-values';
import { PaxosCommitConfig, loadPaxosCommitConfig } from './paxos-commit-config';

// Callers catch ConfigError from here, with the loader that throws it.
export { ConfigError };

export interface AppConfig {
  readonly port: number;
  readonly databaseUrl: string;
  readonly kafkaBrokers: readonly string[];
  readonly topicPrefix: string;
  readonly coordinatorId: string;
  readonly kafkaPartitions: number;
  readonly kafkaSessionTimeoutMs: number;
  readonly defaultPrepareTimeoutMs: number;
  readonly maxPrepareTimeoutMs: number;
  readonly resendIntervalMs: number;
  readonly participantTtlMs: number;
  /**
   * 3pc: how long the coordinator waits for PreCommit acknowledgements before it asks the
   * failure detector (participantTtlMs) whether the silent participants have crashed.
   */
  readonly precommitAckTimeoutMs: number;
  readonly maxPayloadBytes: number;
  readonly maxParticipants: number;
  readonly groupCommitMaxBatch: number;
  readonly maxWaitMs: number;
  readonly failpoints: readonly Failpoint[];
  readonly leaseDurationMs: number;
  /** Base URL of the trace viewer (Jaeger) the ops page links each transaction's trace to. */
  readonly traceUiUrl: string;
  /** This replica's Paxos Commit roles; undefined where ACCEPTOR_DATABASE_URL is unset (protocol not served). */
  readonly paxosCommit: PaxosCommitConfig | undefined;
}

function kafkaBrokers(env: Env): string[] {
  const brokers = required(env, 'KAFKA_BROKERS').split(',').map((b) => b.trim()).filter(Boolean);
  for (const broker of brokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(broker)) throw new ConfigError('KAFKA_BROKERS', `must be a comma-separated list of host:port, got ${JSON.stringify(broker)}`);
  }
  if (brokers.length === 0) throw new ConfigError('KAFKA_BROKERS', 'is empty');
  return brokers;
}

function identifier(env: Env, name: string, fallback: string): string {
  const value = env[name] || fallback;
  if (!ID_PATTERN.test(value)) {
    throw new ConfigError(name, `must be letters, digits, '.', '_' or '-', got ${JSON.stringify(value)}`);
  }
  return value;
}

function httpUrl(env: Env, name: string, fallback: string): string {
  const raw = env[name] || fallback;
  try {
    const url = new URL(raw);
    if (!['http:', 'https:'].includes(url.protocol)) throw new Error();
  } catch {
    throw new ConfigError(name, `must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  }
  // Links are built by appending a path, so a trailing slash would double up.
  return raw.replace(/\/+$/, '');
}

function failpoints(env: Env): Failpoint[] {
  const names = (env.FAILPOINTS ?? '').split(',').map((f) => f.trim()).filter(Boolean);
  for (const name of names) {
    if (!(FAILPOINTS as readonly string[]).includes(name)) throw new ConfigError('FAILPOINTS', `names unknown failpoint ${JSON.stringify(name)}; known: ${FAILPOINTS.join(', ')}`);
  }
  return names as Failpoint[];
}

export function loadConfig(env: Env): AppConfig {
  const defaultPrepareTimeoutMs = integer(env, 'PREPARE_TIMEOUT_MS', 10_000, 10);
  const maxPrepareTimeoutMs = integer(env, 'MAX_PREPARE_TIMEOUT_MS', 300_000, 10);
  if (defaultPrepareTimeoutMs > maxPrepareTimeoutMs) {
    throw new ConfigError('PREPARE_TIMEOUT_MS', `must not exceed MAX_PREPARE_TIMEOUT_MS (${maxPrepareTimeoutMs})`);
  }
  const databaseUrl = postgresUrl(env, 'DATABASE_URL');
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    databaseUrl,
    kafkaBrokers: kafkaBrokers(env),
    topicPrefix: identifier(env, 'KAFKA_TOPIC_PREFIX', 'txn'),
    coordinatorId: identifier(env, 'COORDINATOR_ID', `${hostname().split('.')[0]}-${process.pid}`),
    kafkaPartitions: integer(env, 'KAFKA_PARTITIONS', 6, 1, 1024),
    kafkaSessionTimeoutMs: integer(env, 'KAFKA_SESSION_TIMEOUT_MS', 10_000, 1000),
    defaultPrepareTimeoutMs,
    maxPrepareTimeoutMs,
    resendIntervalMs: integer(env, 'RESEND_INTERVAL_MS', 1000, 10),
    participantTtlMs: integer(env, 'PARTICIPANT_TTL_MS', 5000, 100),
    precommitAckTimeoutMs: integer(env, 'PRECOMMIT_ACK_TIMEOUT_MS', 2000, 10),
    maxPayloadBytes: integer(env, 'MAX_PAYLOAD_BYTES', 65_536, 1),
    maxParticipants: integer(env, 'MAX_PARTICIPANTS', 32, 1, 1000),
    groupCommitMaxBatch: integer(env, 'GROUP_COMMIT_MAX_BATCH', 256, 1, 10_000),
    maxWaitMs: integer(env, 'MAX_WAIT_MS', 60_000, 0),
    failpoints: failpoints(env),
    leaseDurationMs: integer(env, 'LEASE_DURATION_MS', 5000, 100),
    traceUiUrl: httpUrl(env, 'TRACE_UI_URL', 'http://localhost:16686'),
    paxosCommit: loadPaxosCommitConfig(env, databaseUrl),
  };
}
