/**
 * Which database failures are the database going away rather than a bad statement: the
 * connection was refused, reset or terminated, or the server is starting up or shutting
 * down. Such a write is worth repeating once the server is back; a constraint violation or
 * a syntax error is not, and repeating it would only hide a bug.
 */

// SQLSTATE codes of a lost or refused connection (class 08, operator intervention 57P0x,
// too many connections) and Node's socket error codes for the same.
const TRANSIENT_CODES = new Set(['57P01', '57P02', '57P03', '53300', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const TRANSIENT_MESSAGE =
  /connection terminated|connection error|not queryable|terminating connection|server closed the connection|the database system is (starting up|shutting down|in recovery mode)|timeout exceeded when trying to connect|connect ECONNREFUSED|read ECONNRESET/i;

// TypeORM releases a query runner whose connection emitted 'error'; the transaction's next
// statement then fails with this instead of the connection's own error.
const RELEASED_RUNNER = 'QueryRunnerProviderAlreadyReleasedError';

export function isTransientDatabaseError(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 4) return false;
  const { name, code, message, driverError, cause } = error as { name?: unknown; code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown };
  if (name === RELEASED_RUNNER) return true;
  if (typeof code === 'string' && (code.startsWith('08') || TRANSIENT_CODES.has(code))) return true;
  if (typeof message === 'string' && TRANSIENT_MESSAGE.test(message)) return true;
  // TypeORM wraps the driver's error; an AggregateError (several addresses refused) holds several.
  const nested = [driverError, cause, ...((error as { errors?: unknown[] }).errors ?? [])];
  return nested.some((inner) => isTransientDatabaseError(inner, depth + 1));
}
