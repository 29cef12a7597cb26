/**
 * Validation of `POST /v1/transactions`. Every rejection names the field and the rule, so a
 * client can fix its request without reading the server's source.
 */
import { BadRequestException, PayloadTooLargeException } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { PARTICIPANT_NAME_PATTERN, PROTOCOLS, ProtocolName } from '../transport/kafka/envelope';
import { CreateTransactionRequest } from '../coordinator/transaction-request';

/** Every protocol the product knows; a coordinator serves those it has a driver for. */
export const KNOWN_PROTOCOLS = PROTOCOLS;

export type { CreateTransactionRequest };

const ALLOWED_FIELDS = new Set(['protocol', 'participants', 'timeoutMs']);
const ALLOWED_PARTICIPANT_FIELDS = new Set(['name', 'payload']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function checkProtocol(protocol: unknown, served: readonly string[]): ProtocolName {
  if (typeof protocol !== 'string') throw new BadRequestException('protocol is required: one of ' + served.join(', '));
  if (served.includes(protocol)) return protocol as ProtocolName;
  if ((KNOWN_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new BadRequestException(`protocol ${protocol} is not served by this coordinator; served: ${served.join(', ')}`);
  }
  throw new BadRequestException(`unknown protocol ${JSON.stringify(protocol)}; served: ${served.join(', ')}`);
}

function checkParticipants(raw: unknown, config: AppConfig): CreateTransactionRequest['participants'] {
  if (!Array.isArray(raw) || raw.length === 0) throw new BadRequestException('participants must be a non-empty array of { name, payload }');
  if (raw.length > config.maxParticipants) throw new BadRequestException(`participants has ${raw.length} entries; the limit is ${config.maxParticipants}`);
  const seen = new Set<string>();
  return raw.map((entry, i) => {
    if (!isObject(entry)) throw new BadRequestException(`participants[${i}] must be an object { name, payload }`);
    const extra = Object.keys(entry).filter((k) => !ALLOWED_PARTICIPANT_FIELDS.has(k));
    if (extra.length > 0) throw new BadRequestException(`participants[${i}] has unknown field(s): ${extra.join(', ')}`);
    const { name, payload } = entry;
    if (typeof name !== 'string' || !PARTICIPANT_NAME_PATTERN.test(name)) {
      throw new BadRequestException(`participants[${i}].name must match ${PARTICIPANT_NAME_PATTERN}`);
    }
    if (seen.has(name)) throw new BadRequestException(`participant ${name} is named more than once`);
    seen.add(name);
    const size = Buffer.byteLength(JSON.stringify(payload ?? null), 'utf8');
    if (size > config.maxPayloadBytes) {
      throw new PayloadTooLargeException(`participants[${i}].payload is ${size} bytes; the limit is ${config.maxPayloadBytes}`);
    }
    return { name, payload: payload ?? null };
  });
}

function checkTimeout(raw: unknown, config: AppConfig): number {
  if (raw === undefined) return config.defaultPrepareTimeoutMs;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > config.maxPrepareTimeoutMs) {
    throw new BadRequestException(`timeoutMs must be an integer between 1 and ${config.maxPrepareTimeoutMs}`);
  }
  return raw;
}

export function parseCreateTransaction(body: unknown, config: AppConfig, served: readonly string[]): CreateTransactionRequest {
  if (!isObject(body)) throw new BadRequestException('request body must be a JSON object');
  const extra = Object.keys(body).filter((k) => !ALLOWED_FIELDS.has(k));
  if (extra.length > 0) throw new BadRequestException(`unknown field(s): ${extra.join(', ')}`);
  const protocol = checkProtocol(body.protocol, served);
  const participants = checkParticipants(body.participants, config);
  const timeoutMs = checkTimeout(body.timeoutMs, config);
  const requestHash = createHash('sha256').update(JSON.stringify({ protocol, participants, timeoutMs })).digest('hex');
  return { protocol, participants, timeoutMs, requestHash };
}

export function parseIdempotencyKey(raw: string | string[] | undefined): string | null {
  if (raw === undefined) return null;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!/^[\x21-\x7e]{1,200}$/.test(key)) throw new BadRequestException('Idempotency-Key must be 1 to 200 printable ASCII characters without spaces');
  return key;
}

export function parseWaitMs(raw: string | undefined, config: AppConfig): number {
  if (raw === undefined || raw === '') return 0;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > config.maxWaitMs) {
    throw new BadRequestException(`waitMs must be an integer between 0 and ${config.maxWaitMs}`);
  }
  return value;
}
