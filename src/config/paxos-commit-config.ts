/**
 * Configuration of a replica's Paxos Commit roles (acceptor and leader candidate), read with
 * the rest of the configuration at start. Paxos Commit runs only where ACCEPTOR_DATABASE_URL
 * is set: an acceptor's promises must survive restarts, so without a database of its own a
 * replica cannot be one, and then it does not serve the protocol at all.
 */
import { ConfigError, Env, ID_PATTERN, integer, postgresUrl } from './env-values';

export interface PaxosCommitConfig {
  /** This replica's own acceptor database (promises, accepted values, leader rounds). */
  readonly acceptorDatabaseUrl: string;
  /** Faults tolerated: 2F+1 acceptors keep deciding while F of them are down. */
  readonly f: number;
  /** Every acceptor, in leader-preference order; the first one trusted leads. */
  readonly acceptors: readonly string[];
  readonly heartbeatIntervalMs: number;
  /** A replica silent this long is suspected; a wrong suspicion costs time, never safety. */
  readonly suspectAfterMs: number;
  /** How long a leader's ballot may stall before it starts a higher one. */
  readonly retryIntervalMs: number;
  /** Acceptors send phase 2b to the participants too, who then learn one message delay sooner. */
  readonly phase2bToRms: boolean;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`);
}

function acceptorList(env: Env, f: number, coordinatorId: string): string[] {
  const raw = env.PAXOS_ACCEPTORS;
  // A single acceptor (F = 0) is the degenerate case G&L call two-phase commit; it needs no list.
  if (!raw && f === 0) return [coordinatorId];
  if (!raw) throw new ConfigError('PAXOS_ACCEPTORS', `is required with ACCEPTOR_DATABASE_URL: the ${2 * f + 1} replica ids (2F+1 with PAXOS_F=${f})`);
  const ids = raw.split(',').map((id) => id.trim()).filter(Boolean);
  const bad = ids.find((id) => !ID_PATTERN.test(id));
  if (bad !== undefined) throw new ConfigError('PAXOS_ACCEPTORS', `must list replica ids made of letters, digits, '.', '_' or '-', got ${JSON.stringify(bad)}`);
  if (new Set(ids).size !== ids.length) throw new ConfigError('PAXOS_ACCEPTORS', `names a replica twice: ${JSON.stringify(raw)}`);
  if (ids.length !== 2 * f + 1) throw new ConfigError('PAXOS_ACCEPTORS', `must name 2F+1 = ${2 * f + 1} replicas for PAXOS_F=${f}, got ${ids.length}`);
  return ids;
}

/** The Paxos Commit settings, or undefined when this replica does not run the protocol. */
export function loadPaxosCommitConfig(env: Env, databaseUrl: string): PaxosCommitConfig | undefined {
  if (!env.ACCEPTOR_DATABASE_URL) {
    const stray = ['PAXOS_ACCEPTORS', 'PAXOS_F'].find((name) => env[name]);
    if (stray) throw new ConfigError('ACCEPTOR_DATABASE_URL', `is required when ${stray} is set: every acceptor keeps its state in a database of its own`);
    return undefined;
  }
  const acceptorDatabaseUrl = postgresUrl(env, 'ACCEPTOR_DATABASE_URL');
  if (acceptorDatabaseUrl === databaseUrl) {
    throw new ConfigError('ACCEPTOR_DATABASE_URL', 'must name a database of this replica alone, not the shared decision log of DATABASE_URL');
  }
  // The acceptor's identity must survive restarts, so the host-and-pid default will not do.
  const coordinatorId = env.COORDINATOR_ID;
  if (!coordinatorId) throw new ConfigError('COORDINATOR_ID', 'is required with ACCEPTOR_DATABASE_URL: it names this replica among PAXOS_ACCEPTORS');
  const f = integer(env, 'PAXOS_F', 1, 0, 10);
  const acceptors = acceptorList(env, f, coordinatorId);
  if (!acceptors.includes(coordinatorId)) {
    throw new ConfigError('COORDINATOR_ID', `${JSON.stringify(coordinatorId)} is not one of PAXOS_ACCEPTORS (${acceptors.join(', ')})`);
  }
  const heartbeatIntervalMs = integer(env, 'PAXOS_HEARTBEAT_INTERVAL_MS', 200, 10, 60_000);
  const suspectAfterMs = integer(env, 'PAXOS_SUSPECT_AFTER_MS', 1000, 20, 600_000);
  if (suspectAfterMs < 2 * heartbeatIntervalMs) {
    throw new ConfigError('PAXOS_SUSPECT_AFTER_MS', `must be at least twice PAXOS_HEARTBEAT_INTERVAL_MS (${heartbeatIntervalMs}), or one late heartbeat makes a live leader suspect`);
  }
  return {
    acceptorDatabaseUrl,
    f,
    acceptors,
    heartbeatIntervalMs,
    suspectAfterMs,
    retryIntervalMs: integer(env, 'PAXOS_RETRY_INTERVAL_MS', 1000, 10, 600_000),
    phase2bToRms: flag(env, 'PAXOS_PHASE2B_TO_RMS', true),
  };
}
