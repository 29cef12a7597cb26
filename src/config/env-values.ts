/**
 * Reading single configuration values from the environment. Every reader names the variable
 * in its error, so a bad start says which setting to fix; app-config.ts and
 * paxos-commit-config.ts both read through these.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Replica and participant ids: they end up in topic names, so Kafka's characters only. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function required(env: Env, name: string): string {
  const raw = env[name];
  if (!raw) throw new ConfigError(name, 'is required');
  return raw;
}

/** A set variable that must be a postgres:// (or postgresql://) URL. */
export function postgresUrl(env: Env, name: string): string {
  const raw = required(env, name);
  try {
    if (!['postgres:', 'postgresql:'].includes(new URL(raw).protocol)) throw new Error();
  } catch {
    throw new ConfigError(name, `must be a postgres:// URL, got ${JSON.stringify(raw)}`);
  }
  return raw;
}
