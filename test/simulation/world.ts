/**
 * The simulated world: one clock, one event queue, one seeded PRNG, a network that drops,
 * duplicates, delays and partitions, nodes that crash and restart with only their durable
 * records. It is the driver of the production cores, so it keeps the durability rule of
 * src/protocols/common/effects.ts: a step's writes are durable before any of its sends leave.
 */
import { Vote } from '../../src/protocols/two-phase/messages';
import { Delivery, Host, ProtocolAdapter, SimEffect, SimMessage } from './adapter';
import { FaultProfile, NO_FAULTS } from './faults';
import { Prng } from './prng';
import { EventQueue } from './queue';
import { TxnTrack, Violation } from './tracker';
import { DistributiveOmit, SentRecord, Verdict, WorldEvent, WorldOptions, WriteRecord, describe, key } from './world-types';

export type { SentRecord, Verdict, WorldOptions, WriteRecord };
export { describe };

export class World {
  readonly rng: Prng;
  readonly faults: FaultProfile;
  clock = 0;
  steps = 0;
  healed = false;
  readonly txns = new Map<string, TxnTrack>();
  readonly violations: Violation[] = [];
  readonly transcript: string[] = [];
  readonly sent: SentRecord[] = [];
  readonly writes: WriteRecord[] = [];
  /**
   * Scripted crashes: called after a step's writes; a number means "crash now, after letting
   * that many of the step's sends out".
   */
  crashAfterWrites?: (node: string, records: readonly unknown[]) => number | undefined;
  /** Scripted tests decide the fate of each message here. */
  intercept?: (from: string, to: string, message: SimMessage) => Verdict;
  readonly held: { from: string; to: string; message: SimMessage; depth: number }[] = [];

  private readonly queue = new EventQueue<WorldEvent>();
  private seq = 0;
  private timerToken = 0;
  private readonly up = new Map<string, boolean>();
  private readonly incarnation = new Map<string, number>();
  private readonly durable = new Map<string, unknown[]>();
  private readonly timers = new Map<string, number>();
  private partition?: readonly string[][];
  private readonly record: boolean;
  private readonly yesVote: number;
  private readonly leaderNoise: number;
  private readonly fixedDelayMs?: number;
  readonly host: Host;

  constructor(
    readonly adapter: ProtocolAdapter,
    options: WorldOptions,
  ) {
    this.rng = new Prng(options.seed);
    this.faults = options.faults ?? NO_FAULTS;
    this.record = options.transcript ?? false;
    this.yesVote = options.yesVote ?? 1;
    this.leaderNoise = options.leaderNoise ?? 0;
    this.fixedDelayMs = options.fixedDelayMs;
    for (const node of adapter.nodes) {
      this.up.set(node, true);
      this.incarnation.set(node, 0);
    }
    this.host = this.makeHost();
  }

  log(line: string): void {
    if (this.record) this.transcript.push(`${String(Math.round(this.clock)).padStart(6)}ms  ${line}`);
  }

  isUp(node: string): boolean {
    return this.up.get(node) ?? false;
  }

  private makeHost(): Host {
    return {
      records: (node, txnId, role) => this.durable.get(key(node, txnId, role)) ?? [],
      durableKeys: (node) => this.durableKeysOf(node),
      failed: (txnId, node) => this.txns.get(txnId)?.failed.has(node) ?? false,
      suspects: (observer, txnId, node, deferrals) => this.suspects(observer, txnId, node, deferrals),
      believesLeader: (replica, txnId) => this.believesLeader(replica, txnId),
      isUp: (node) => this.isUp(node),
      isHealed: () => this.healed,
    };
  }

  private durableKeysOf(node: string): { txnId: string; role: string }[] {
    const out: { txnId: string; role: string }[] = [];
    for (const k of this.durable.keys()) {
      const [n, txnId, role] = k.split('|');
      if (n === node) out.push({ txnId, role });
    }
    return out;
  }

  private suspects(observer: string, txnId: string, node: string, deferrals: number): boolean {
    if (this.txns.get(txnId)?.failed.has(node)) return true;
    if (this.faults.detector === 'perfect') return false;
    return !this.isUp(node) || !this.reachable(observer, node) || deferrals >= 3;
  }

  private believesLeader(replica: string, txnId: string): boolean {
    if (!this.isUp(replica)) return false;
    const owner = this.txns.get(txnId)?.owner;
    const candidates = this.adapter.nodes.filter((n) => this.isReplica(n) && this.isUp(n) && this.reachable(replica, n));
    const leader = owner && candidates.includes(owner) ? owner : candidates[0];
    if (leader === replica) return true;
    // Before healing, the failure detector may be wrong: rival leaders must not break safety.
    return !this.healed && this.rng.chance(this.leaderNoise);
  }

  private isReplica(node: string): boolean {
    return !this.adapter.rmPool.includes(node) && node !== 'tm';
  }

  reachable(a: string, b: string): boolean {
    if (!this.partition || a === b) return true;
    return this.partition.some((group) => group.includes(a) && group.includes(b));
  }

  private push(event: DistributiveOmit<WorldEvent, 'seq'>): void {
    this.queue.push({ ...event, seq: this.seq++ } as WorldEvent);
  }

  // ---- scheduling -------------------------------------------------------------------

  beginAt(at: number, txnId: string, rms: readonly string[]): void {
    this.push({ kind: 'begin', at, txnId, rms });
  }

  startChaos(): void {
    this.push({ kind: 'chaos', at: this.clock + this.rng.int(50, 400) });
  }

  send(from: string, to: string, message: SimMessage, depth: number): void {
    this.sent.push({ from, to, type: message.type, txnId: message.txnId, depth });
    if (from === to) {
      this.push({ kind: 'deliver', at: this.clock + 0.5, from, to, message, depth });
      return;
    }
    if (!this.reachable(from, to) || this.rng.chance(this.faults.drop)) {
      this.log(`drop ${from}->${to} ${describe(message)}`);
      return;
    }
    const copies = this.rng.chance(this.faults.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const extra = this.rng.chance(this.faults.longDelay) ? this.rng.int(20, 300) : 0;
      const delay = this.fixedDelayMs ?? this.rng.int(1, 10) + extra;
      this.push({ kind: 'deliver', at: this.clock + delay, from, to, message, depth });
    }
  }

  release(match: (from: string, to: string, message: SimMessage) => boolean): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      const m = this.held[i];
      if (!match(m.from, m.to, m.message)) continue;
      this.held.splice(i, 1);
      this.push({ kind: 'deliver', at: this.clock + 1, from: m.from, to: m.to, message: m.message, depth: m.depth, released: true });
    }
  }

  // ---- faults -------------------------------------------------------------------------

  crash(node: string, downMs?: number): void {
    if (!this.isUp(node)) return;
    this.up.set(node, false);
    const incarnation = (this.incarnation.get(node) ?? 0) + 1;
    this.incarnation.set(node, incarnation);
    this.adapter.crash(node);
    for (const track of this.txns.values()) {
      if (track.rms.includes(node) || !this.adapter.rmPool.includes(node)) track.failed.add(node);
    }
    this.log(`CRASH ${node}`);
    if (downMs !== undefined) this.push({ kind: 'restart', at: this.clock + downMs, node, incarnation });
  }

  restart(node: string): void {
    if (this.isUp(node)) return;
    this.up.set(node, true);
    this.log(`RESTART ${node}`);
    for (const delivery of this.adapter.restart(node, this.host)) this.execute(node, delivery, 0);
  }

  setPartition(groups: readonly string[][] | undefined): void {
    this.partition = groups;
    this.log(groups ? `PARTITION ${groups.map((g) => `{${g.join(',')}}`).join(' ')}` : 'HEAL partition');
  }

  /** Faults stop: partitions heal, crashed nodes restart, the network becomes reliable. */
  heal(): void {
    this.healed = true;
    this.setPartition(undefined);
    for (const node of this.adapter.nodes) this.restart(node);
  }

  private chaos(): void {
    if (this.healed) return;
    const r = this.rng.next();
    if (this.faults.crashes && r < 0.45) {
      const victim = this.rng.pick(this.adapter.nodes);
      this.crash(victim, this.rng.int(20, 600));
    } else if (this.faults.partitions && r < 0.75 && !this.partition) {
      const shuffled = this.rng.shuffle(this.adapter.nodes);
      const cut = this.rng.int(1, shuffled.length - 1);
      const groups = [shuffled.slice(0, cut).sort(), shuffled.slice(cut).sort()];
      this.setPartition(groups);
      this.push({ kind: 'healPartition', at: this.clock + this.rng.int(50, 1500), partition: groups });
    }
    this.startChaos();
  }

  // ---- execution ----------------------------------------------------------------------

  /** Runs one input through a core and carries out its effects, writes first. */
  execute(node: string, delivery: Delivery, depth: number): void {
    const track = this.txns.get(delivery.txnId);
    const before = track?.snapshot();
    const effects = this.adapter.step(node, delivery, this.host);
    let sends = effects.filter((e) => e.kind === 'send');
    const records = this.applyWrites(node, delivery, effects, track);
    const scripted = this.crashAfterWrites?.(node, records);
    const crashMid = scripted !== undefined || (!this.healed && this.faults.crashMidStep > 0 && this.rng.chance(this.faults.crashMidStep));
    if (crashMid) sends = sends.slice(0, scripted ?? this.rng.int(0, sends.length));
    for (const effect of sends) {
      if (effect.kind === 'send') this.send(node, effect.to, effect.message, node === effect.to ? depth : depth + 1);
    }
    for (const effect of effects) this.applyOther(node, delivery, effect, depth, track);
    if (crashMid) this.crash(node, scripted === undefined ? this.rng.int(20, 1000) : undefined);
    if (track && before && !track.violated) {
      const violation = track.check(before);
      if (violation) this.violate({ ...violation, txnId: track.txnId, step: this.steps, at: this.clock });
    }
  }

  private applyWrites(node: string, delivery: Delivery, effects: readonly SimEffect[], track: TxnTrack | undefined): unknown[] {
    const records = effects.flatMap((e) => (e.kind === 'persist' ? [e.record] : []));
    if (records.length === 0) return records;
    const k = key(node, delivery.txnId, delivery.role);
    this.durable.set(k, [...(this.durable.get(k) ?? []), ...records]);
    const forced = effects.some((e) => e.kind === 'send' || e.kind === 'decide');
    const afterOutcome = (track?.learned.length ?? 0) > 0;
    this.writes.push({ node, role: delivery.role, txnId: delivery.txnId, records, forced, afterOutcome });
    for (const record of records) {
      const kind = this.adapter.classify(delivery.role, record);
      if (kind && track) track.record(node, kind);
    }
    return records;
  }

  private applyOther(node: string, delivery: Delivery, effect: SimEffect, depth: number, track: TxnTrack | undefined): void {
    const { txnId, role } = delivery;
    switch (effect.kind) {
      case 'persist':
      case 'send':
        return;
      case 'setTimer': {
        const token = ++this.timerToken;
        this.timers.set(key(node, txnId, role, effect.timer), token);
        const incarnation = this.incarnation.get(node) ?? 0;
        this.push({ kind: 'timer', at: this.clock + effect.afterMs, node, txnId, role, timer: effect.timer, incarnation, token, deferrals: 0, afterMs: effect.afterMs });
        return;
      }
      case 'decide':
        this.log(`${node} learns ${txnId} ${effect.decision}`);
        if (track) {
          track.learn(`${node}:${role}`, effect.decision);
          if (this.adapter.rmPool.includes(node)) track.outcomeDepth = Math.max(track.outcomeDepth, depth);
        }
        return;
      case 'runPrepare': {
        const vote: Vote = this.rng.chance(this.yesVote) ? 'Prepared' : 'Aborted';
        const incarnation = this.incarnation.get(node) ?? 0;
        this.push({ kind: 'vote', at: this.clock + (this.fixedDelayMs ?? this.rng.int(1, 20)), node, txnId, role, vote, incarnation, depth });
        return;
      }
    }
  }

  violate(violation: Violation): void {
    const track = this.txns.get(violation.txnId);
    if (track) track.violated = true;
    this.violations.push(violation);
    this.log(`VIOLATION ${violation.invariant} ${violation.txnId}: ${violation.detail}`);
  }

  // ---- the loop -----------------------------------------------------------------------

  /** Runs events until `done` holds or `maxMs` of simulated time pass; returns `done()`. */
  runUntil(done: () => boolean, maxMs = 60_000): boolean {
    const until = this.clock + maxMs;
    while (!done()) {
      if (this.peekTime() > until || !this.tick()) break;
    }
    return done();
  }

  /** Runs every event due within the next `ms` of simulated time. */
  runFor(ms: number): void {
    const until = this.clock + ms;
    while (this.peekTime() <= until && this.tick());
    this.clock = Math.max(this.clock, until);
  }

  private peekTime(): number {
    return this.queue.peek()?.at ?? Infinity;
  }

  /** Processes one event; false when nothing is left to do. */
  tick(): boolean {
    const event = this.queue.pop();
    if (!event) return false;
    this.clock = Math.max(this.clock, event.at);
    this.steps++;
    this.handle(event);
    return true;
  }

  private handle(event: WorldEvent): void {
    switch (event.kind) {
      case 'deliver':
        return this.deliver(event.from, event.to, event.message, event.depth, event.released);
      case 'timer':
        return this.fireTimer(event);
      case 'vote': {
        if (!this.isUp(event.node) || this.incarnation.get(event.node) !== event.incarnation) return;
        this.log(`${event.node} prepare handler votes ${event.vote} on ${event.txnId}`);
        return this.execute(event.node, { txnId: event.txnId, role: event.role, input: this.adapter.localVote(event.vote) }, event.depth);
      }
      case 'begin':
        return this.begin(event.txnId, event.rms);
      case 'chaos':
        return this.chaos();
      case 'restart':
        if (this.incarnation.get(event.node) === event.incarnation) this.restart(event.node);
        return;
      case 'healPartition':
        if (this.partition === event.partition) this.setPartition(undefined);
        return;
    }
  }

  /** A client request; `at` names the replica that takes it, where the protocol has several. */
  begin(txnId: string, rms: readonly string[], at?: string): void {
    if (this.healed) return;
    const target = this.adapter.begin(txnId, rms, this.host, (up) => (at && up.includes(at) ? at : this.rng.pick(up)));
    if (!target) {
      this.log(`client request for ${txnId} finds no coordinator up`);
      return;
    }
    const track = new TxnTrack(txnId, rms, this.clock);
    track.owner = target.node;
    this.txns.set(txnId, track);
    this.log(`BEGIN ${txnId} at ${target.node} with ${rms.join(',')}`);
    this.execute(target.node, target.delivery, 0);
  }

  private deliver(from: string, to: string, message: SimMessage, depth: number, released = false): void {
    const verdict = released ? 'deliver' : (this.intercept?.(from, to, message) ?? 'deliver');
    if (verdict === 'hold') {
      this.held.push({ from, to, message, depth });
      this.log(`hold ${from}->${to} ${describe(message)}`);
      return;
    }
    if (verdict === 'drop' || !this.isUp(to) || !this.reachable(from, to)) {
      this.log(`lost ${from}->${to} ${describe(message)}`);
      return;
    }
    this.log(`${from}->${to} ${describe(message)}`);
    for (const delivery of this.adapter.onMessage(to, message, this.host)) this.execute(to, delivery, depth);
  }

  private fireTimer(event: Extract<WorldEvent, { kind: 'timer' }>): void {
    const { node, txnId, role, timer } = event;
    if (!this.isUp(node) || this.incarnation.get(node) !== event.incarnation) return;
    if (this.timers.get(key(node, txnId, role, timer)) !== event.token) return;
    const outcome = this.adapter.onTimer(node, txnId, role, timer, this.host, event.deferrals);
    if (outcome === 'ignore') return;
    if (outcome === 'defer') {
      this.push({ ...event, at: this.clock + event.afterMs, deferrals: event.deferrals + 1 });
      return;
    }
    this.log(`${node} timer ${timer} on ${txnId}`);
    this.execute(node, { txnId, role, input: outcome.deliver }, 0);
  }
}

