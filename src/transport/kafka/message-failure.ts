/**
 * What an inbound handler does when handling a message fails. Kafka hands a partition's
 * messages over in order, so a handler that throws holds back every message behind it; one
 * bad message must never do that. Two kinds of failure are told apart:
 *
 * - the message itself is bad (a Postgres data exception, SQLSTATE class 22, or any other
 *   error that is not an infrastructure outage): it is dead-lettered with the reason at once;
 * - the infrastructure is briefly away (a refused or dropped connection, a broker error): the
 *   message is good, so it is tried again with backoff, a bounded number of times, and only
 *   then dead-lettered as `gave up after N attempts: ...`. Handlers are idempotent, so running
 *   one again after it failed halfway is harmless.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** The wait before the second attempt; each later wait doubles it. */
  readonly backoffMs: number;
  /** Awaited between attempts; replaceable so tests need no real waiting. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Told about each failed attempt that is about to be retried. */
  readonly onRetry?: (attempt: number, error: unknown) => void;
}

/** About three seconds of an outage, after which the partition moves on. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, backoffMs: 100 };

/** Network errors of Node and its resolver: the peer is away, not the message wrong. */
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * SQLSTATE classes that say nothing about the statement: 08 connection exception, 40
 * transaction rollback (serialization failure, deadlock), 53 insufficient resources, 57
 * operator intervention (the server is shutting down), 58 system error.
 */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '40', '53', '57', '58']);
/** Errors pg and its pool raise without a code when the server goes away. */
const TRANSIENT_MESSAGES = [/connection terminated/i, /timeout exceeded when trying to connect/i, /connection is not established/i, /cannot use a pool after calling end/i];

/** Whether `error` is an infrastructure outage that may pass, rather than a fault of the message. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof AggregateError && error.errors.some(isTransient)) return true;
  const code = codeOf(error);
  if (code !== undefined && TRANSIENT_NODE_CODES.has(code)) return true;
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2))) return true;
  // Every kafkajs error is about the broker or the network; none is about a message we read.
  if (error.name.startsWith('KafkaJS')) return true;
  if (TRANSIENT_MESSAGES.some((pattern) => pattern.test(error.message))) return true;
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error && isTransient(cause);
}

/** The error as a dead-letter reason: its message and, for Postgres, its SQLSTATE. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return `handler failed: ${String(error)}`;
  const code = codeOf(error);
  return `handler failed: ${error.message}${code ? ` (${code})` : ''}`;
}

/**
 * Runs `handle` and returns why its message must be dead-lettered, or undefined once it was
 * handled. `handle` itself may return such a reason (a message well formed but not for us).
 */
export async function handleOrReason(handle: () => string | undefined | Promise<string | undefined>, policy: RetryPolicy = DEFAULT_RETRY_POLICY): Promise<string | undefined> {
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle();
    } catch (error) {
      if (!isTransient(error)) return describeFailure(error);
      if (attempt >= policy.attempts) return `gave up after ${attempt} attempts: ${describeFailure(error)}`;
      policy.onRetry?.(attempt, error);
      await sleep(policy.backoffMs * 2 ** (attempt - 1));
    }
  }
}

function codeOf(error: Error): string | undefined {
  // TypeORM's QueryFailedError carries the pg error as driverError (and copies its code).
  const code = (error as { code?: unknown }).code ?? (error as { driverError?: { code?: unknown } }).driverError?.code;
  return typeof code === 'string' ? code : undefined;
}
