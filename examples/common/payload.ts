/**
 * Checks on the payloads the example services receive with PREPARE. A payload that does not
 * fit is answered with a NO vote naming the problem, never with a crash.
 */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function identifierField(payload: Record<string, unknown>, field: string): string | undefined {
  const value = payload[field];
  return typeof value === 'string' && value.length > 0 && value.length <= 200 ? value : undefined;
}

export function positiveIntegerField(payload: Record<string, unknown>, field: string): number | undefined {
  const value = payload[field];
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

export const invalid = (reason: string): Checked<never> => ({ ok: false, reason: `invalid payload: ${reason}` });
