/**
 * A small vocabulary for scripted scenarios that read like transcripts: a fault-free world
 * whose messages pass through rules the test sets ("drop phase2a from r0 except to r2"),
 * plus the transcript itself for the failure message when an expectation does not hold.
 */
import { ProtocolAdapter, SimMessage } from './adapter';
import { FaultProfile } from './faults';
import { Verdict, World } from './world';

export interface Match {
  readonly from?: string | readonly string[];
  readonly to?: string | readonly string[];
  readonly type?: string | readonly string[];
}

const oneOf = (want: string | readonly string[] | undefined, got: string): boolean =>
  want === undefined || (typeof want === 'string' ? want === got : want.includes(got));

export function matches(match: Match, from: string, to: string, message: SimMessage): boolean {
  return oneOf(match.from, from) && oneOf(match.to, to) && oneOf(match.type, message.type);
}

export class Scenario {
  readonly world: World;
  private rules: { match: Match; verdict: Verdict }[] = [];

  constructor(adapter: ProtocolAdapter, options: { seed?: number; faults?: FaultProfile } = {}) {
    this.world = new World(adapter, { seed: options.seed ?? 1, faults: options.faults, transcript: true });
    this.world.intercept = (from, to, message) => this.rules.find((r) => matches(r.match, from, to, message))?.verdict ?? 'deliver';
  }

  drop(match: Match): this {
    this.rules.push({ match, verdict: 'drop' });
    return this;
  }

  hold(match: Match): this {
    this.rules.push({ match, verdict: 'hold' });
    return this;
  }

  /** Forgets every rule: from now on the network delivers everything. */
  deliverEverything(): this {
    this.rules = [];
    return this;
  }

  begin(txnId: string, rms: readonly string[], at?: string): this {
    this.world.begin(txnId, rms, at);
    return this;
  }

  runFor(ms: number): this {
    this.world.runFor(ms);
    return this;
  }

  runUntil(done: () => boolean, maxMs = 60_000): boolean {
    return this.world.runUntil(done, maxMs);
  }

  crash(node: string): this {
    this.world.crash(node);
    return this;
  }

  restart(node: string): this {
    this.world.restart(node);
    return this;
  }

  rmState(txnId: string, rm: string): string | undefined {
    return this.world.txns.get(txnId)?.rmState[rm];
  }

  learned(txnId: string): string[] {
    return (this.world.txns.get(txnId)?.learned ?? []).map((l) => `${l.observer}=${l.decision}`);
  }

  /** The transcript, for an assertion's message. */
  get transcript(): string {
    return this.world.transcript.join('\n');
  }
}
