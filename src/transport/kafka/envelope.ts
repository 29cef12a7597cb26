/**
 * The versioned JSON envelope every protocol message travels in (docs/protocol.md is the
 * contract). Parsing is strict so that a malformed message is rejected with a reason, and
 * sent to the dead-letter topic, instead of reaching a protocol core.
 */
export const ENVELOPE_VERSION = 1;

export const PROTOCOLS = ['2pc', '3pc', 'paxos-commit'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

export const MESSAGE_TYPES = ['ANNOUNCE', 'PREPARE', 'VOTE', 'COMMIT', 'ABORT', 'ACK', 'QUERY'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const PARTICIPANT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface AnnounceBody {
  readonly name: string;
  readonly protocols: readonly string[];
  readonly topic: string;
  readonly instanceId: string;
}
export interface PrepareBody {
  readonly payload: unknown;
  readonly timeoutMs: number;
}
export interface VoteBody {
  readonly vote: 'YES' | 'NO';
  readonly reason?: string;
}
export interface AckBody {
  readonly outcome: 'COMMIT' | 'ABORT';
}
export type EmptyBody = Record<string, never>;

interface Base<T extends MessageType, B> {
  readonly v: typeof ENVELOPE_VERSION;
  readonly type: T;
  readonly txnId: string;
  readonly protocol: ProtocolName;
  /** The sender: a coordinator instance id or a participant name. */
  readonly from: string;
  /** Owner epoch of the transaction; participants ignore orders from a lower epoch. */
  readonly epoch: number;
  readonly sentAt: string;
  readonly body: B;
}

export type Envelope =
  | Base<'ANNOUNCE', AnnounceBody>
  | Base<'PREPARE', PrepareBody>
  | Base<'VOTE', VoteBody>
  | Base<'COMMIT', EmptyBody>
  | Base<'ABORT', EmptyBody>
  | Base<'ACK', AckBody>
  | Base<'QUERY', EmptyBody>;

export type EnvelopeOf<T extends MessageType> = Extract<Envelope, { type: T }>;

export type ParseResult = { readonly ok: true; readonly envelope: Envelope } | { readonly ok: false; readonly reason: string };

const fail = (reason: string): ParseResult => ({ ok: false, reason });
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function bodyError(type: MessageType, body: Record<string, unknown>): string | undefined {
  switch (type) {
    case 'ANNOUNCE':
      if (typeof body.name !== 'string' || !PARTICIPANT_NAME_PATTERN.test(body.name)) return 'body.name must match ' + PARTICIPANT_NAME_PATTERN;
      if (!Array.isArray(body.protocols) || !body.protocols.every((p) => typeof p === 'string')) return 'body.protocols must be an array of strings';
      if (typeof body.topic !== 'string' || body.topic.length === 0) return 'body.topic must be a non-empty string';
      if (typeof body.instanceId !== 'string') return 'body.instanceId must be a string';
      return undefined;
    case 'PREPARE':
      if (typeof body.timeoutMs !== 'number' || body.timeoutMs <= 0) return 'body.timeoutMs must be a positive number';
      return undefined;
    case 'VOTE':
      if (body.vote !== 'YES' && body.vote !== 'NO') return 'body.vote must be "YES" or "NO"';
      if (body.reason !== undefined && typeof body.reason !== 'string') return 'body.reason must be a string';
      return undefined;
    case 'ACK':
      if (body.outcome !== 'COMMIT' && body.outcome !== 'ABORT') return 'body.outcome must be "COMMIT" or "ABORT"';
      return undefined;
    case 'COMMIT':
    case 'ABORT':
    case 'QUERY':
      return undefined;
  }
}

export function parseEnvelope(raw: unknown): ParseResult {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw)) value = raw.toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return fail('value is not valid JSON');
    }
  }
  if (!isObject(value)) return fail('envelope must be a JSON object');
  if (value.v !== ENVELOPE_VERSION) return fail(`unsupported envelope version ${JSON.stringify(value.v)}; expected ${ENVELOPE_VERSION}`);
  if (typeof value.type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(value.type)) {
    return fail(`unknown message type ${JSON.stringify(value.type)}`);
  }
  const type = value.type as MessageType;
  if (typeof value.txnId !== 'string' || (type !== 'ANNOUNCE' && value.txnId.length === 0)) return fail('txnId must be a string');
  if (typeof value.protocol !== 'string' || !(PROTOCOLS as readonly string[]).includes(value.protocol)) {
    return fail(`unknown protocol ${JSON.stringify(value.protocol)}`);
  }
  if (typeof value.from !== 'string' || value.from.length === 0) return fail('from must be a non-empty string');
  if (typeof value.epoch !== 'number' || !Number.isInteger(value.epoch) || value.epoch < 0) return fail('epoch must be a non-negative integer');
  if (typeof value.sentAt !== 'string') return fail('sentAt must be an ISO-8601 string');
  if (!isObject(value.body)) return fail('body must be a JSON object');
  const error = bodyError(type, value.body);
  if (error) return fail(`${type}: ${error}`);
  return { ok: true, envelope: value as unknown as Envelope };
}

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}
