/** The simulated world's vocabulary: its events, what it records, and how it prints messages. */
import { Vote } from '../../src/protocols/two-phase/messages';
import { SimMessage } from './adapter';
import { FaultProfile } from './faults';
import { Timed } from './queue';

export type WorldEvent = Timed &
  (
    | { kind: 'deliver'; from: string; to: string; message: SimMessage; depth: number; released?: boolean }
    | { kind: 'timer'; node: string; txnId: string; role: string; timer: string; incarnation: number; token: number; deferrals: number; afterMs: number }
    | { kind: 'vote'; node: string; txnId: string; role: string; vote: Vote; incarnation: number; depth: number }
    | { kind: 'begin'; txnId: string; rms: readonly string[] }
    | { kind: 'chaos' }
    | { kind: 'restart'; node: string; incarnation: number }
    | { kind: 'healPartition'; partition: readonly string[][] }
  );

export interface SentRecord {
  readonly from: string;
  readonly to: string;
  readonly type: string;
  readonly txnId: string;
  readonly depth: number;
}

export interface WriteRecord {
  readonly node: string;
  readonly role: string;
  readonly txnId: string;
  readonly records: readonly unknown[];
  /** The same step also sends or announces, so the write must be forced, not batched lazily. */
  readonly forced: boolean;
  /** Someone had already learned the outcome when the step began. */
  readonly afterOutcome: boolean;
}

export type Verdict = 'deliver' | 'drop' | 'hold';

export interface WorldOptions {
  readonly seed: number;
  readonly faults?: FaultProfile;
  readonly transcript?: boolean;
  /** Probability that an RM's prepare handler votes Prepared. */
  readonly yesVote?: number;
  /** How often, before healing, a replica wrongly believes it leads (rival leaders). */
  readonly leaderNoise?: number;
  /** Every message and every prepare handler takes exactly this long (cost measurements). */
  readonly fixedDelayMs?: number;
}

export const key = (...parts: string[]): string => parts.join('|');
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export function describe(message: SimMessage): string {
  const { type, txnId, ...rest } = message as SimMessage & Record<string, unknown>;
  const details = Object.entries(rest)
    .filter(([k]) => k !== 'membership' && k !== 'rms')
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return `${type} ${txnId}${details ? ` ${details}` : ''}`;
}
