/**
 * The world of the production-code simulator: coordinator replicas (sim-replica.ts) over one
 * shared decision log (memory-decision-log.ts) and a simulated Kafka (sim-kafka.ts), with
 * participants played by the participant SDK's production 2PC driver (sdk-participants.ts; or
 * the bare RM core, sim-participants.ts), all on one fake timeline
 * (sim-time.ts). While faults are on, a chaos loop crashes, pauses and restarts replicas
 * and participants, moves partitions between replicas, and the ports fail, slow down and
 * lose writes and messages. The named invariants of src/protocols/invariants.ts are checked
 * after every step for every transaction the step touched, plus `durability` (no RM commits,
 * or aborts after preparing, before the log holds that decision) and `decisionStable` on the
 * log itself (its decision never changes).
 */
import { AppConfig } from '../../../src/config/app-config';
import { Decision } from '../../../src/protocols/common/effects';
import { checkCommitInvariants, CommitSnapshot } from '../../../src/protocols/invariants';
import { Envelope } from '../../../src/transport/kafka/envelope';
import { topicsFor } from '../../../src/transport/kafka/topics';
import { Prng } from '../prng';
import { TxnTrack } from '../tracker';
import { MemoryDecisionLog } from './memory-decision-log';
import { StorageFaults, StorageStats } from './process';
import { NetworkFaults, SimKafka } from './sim-kafka';
import { ParticipantHooks, SimParticipants } from './sim-participants';
import { SdkParticipants } from './sdk-participants';
import { DriverFactory, SimReplica } from './sim-replica';
import { SimClock } from './sim-time';

export type ProdViolationName = 'tcConsistent' | 'validity' | 'decisionStable' | 'durability' | 'noLostWork' | 'termination';

export interface ProdViolation {
  readonly invariant: ProdViolationName;
  readonly txnId: string;
  readonly detail: string;
  readonly step: number;
  readonly at: number;
}

export interface ProdFaults {
  readonly storage: StorageFaults;
  readonly network: NetworkFaults;
  /** Mean simulated time between two chaos events (crash, pause, rebalance, ...); 0 for none. */
  readonly chaosEveryMs: number;
  /** Pauses (and the rejoin with the same partitions that follows one); see the known findings in docs/protocols.md. */
  readonly pauses: boolean;
}

export const DEFAULT_FAULTS: ProdFaults = {
  storage: { fail: 0.03, slow: 0.05, ambiguous: 0.02, slowMs: [20, 400] },
  network: { drop: 0.03, duplicate: 0.03, maxDelayMs: 40, publishFail: 0.02 },
  chaosEveryMs: 700,
  pauses: true,
};

/**
 * The faults under which the production code as it stands keeps liveness: no write that
 * fails or is lost, no pause. Crashes, restarts, partition moves, slow writes, lost,
 * duplicated and reordered messages and failed sends stay on.
 */
export const LIVENESS_FAULTS: ProdFaults = {
  ...DEFAULT_FAULTS,
  storage: { ...DEFAULT_FAULTS.storage, fail: 0, ambiguous: 0 },
  pauses: false,
};

/** Only failing log writes, on a steady cluster: the runtime's retry is all that finishes a transaction. */
export const FAILING_WRITES_ONLY: ProdFaults = {
  storage: { fail: 0.2, slow: 0, ambiguous: 0, slowMs: [0, 0] },
  network: { drop: 0, duplicate: 0, maxDelayMs: 5, publishFail: 0 },
  chaosEveryMs: 0,
  pauses: false,
};

export interface WorldOptions {
  readonly seed: number;
  readonly replicas: number;
  readonly partitions: number;
  readonly rms: number;
  readonly faults: ProdFaults;
  readonly driver: DriverFactory;
  readonly transcript: boolean;
  /** Who plays the participants: the SDK's production driver (default), or the bare 2PC RM core. */
  readonly participants?: 'sdk' | 'core';
}

const LEASE_MS = 1000;
const SESSION_TIMEOUT_MS = 600;

export class ProdWorld {
  readonly rng: Prng;
  readonly store = new MemoryDecisionLog();
  readonly kafka: SimKafka;
  readonly participants: SimParticipants | SdkParticipants;
  readonly replicas: SimReplica[] = [];
  readonly tracks = new Map<string, TxnTrack>();
  readonly violations: ProdViolation[] = [];
  readonly transcript: string[] = [];
  readonly storageStats: StorageStats = { calls: 0, failed: 0, slow: 0, ambiguous: 0 };
  readonly accepted = new Set<string>();
  faultsOn = true;
  steps = 0;
  private readonly snapshots = new Map<string, CommitSnapshot>();
  private readonly dirty = new Set<string>();
  private readonly loggedDecision = new Map<string, Decision>();
  private groupGeneration = 0;

  constructor(
    readonly clock: SimClock,
    readonly options: WorldOptions,
  ) {
    this.rng = new Prng(options.seed);
    const at = (ms: number, fire: () => void): (() => void) => clock.at(ms, fire);
    const rmNames = Array.from({ length: options.rms }, (_, i) => `rm${i + 1}`);
    const hooks: ParticipantHooks = {
      record: (txnId, rm, kind) => this.onRmRecord(txnId, rm, kind),
      learn: (txnId, rm, decision) => this.track(txnId)?.learn(rm, decision),
      send: (envelope) => this.kafka.toCoordinators(envelope),
      log: (line) => this.log(line),
    };
    this.participants =
      options.participants === 'core'
        ? new SimParticipants(rmNames, this.rng, at, 0.85, hooks)
        : new SdkParticipants(rmNames, this.rng, at, 0.85, hooks, () => (this.faultsOn && options.faults.storage.fail > 0 ? { fail: options.faults.storage.fail } : undefined));
    this.kafka = new SimKafka(options.partitions, this.rng, at, () => (this.faultsOn ? options.faults.network : undefined), (rm, e) => this.toRm(rm, e));
    this.store.onChange = (change) => this.onLogChange(change.kind, change.txnId);
    const topics = topicsFor('sim');
    const prefix = topics.participant('');
    for (let i = 1; i <= options.replicas; i++) {
      this.replicas.push(
        new SimReplica(`c${i}`, {
          store: this.store,
          kafka: this.kafka,
          rng: this.rng,
          topics,
          participantOf: (topic) => (topic.startsWith(prefix) ? topic.slice(prefix.length) : undefined),
          storageFaults: () => (this.faultsOn ? options.faults.storage : undefined),
          networkFaults: () => (this.faultsOn ? options.faults.network : undefined),
          storageStats: this.storageStats,
          config: (id) => configFor(id),
          driver: options.driver,
          onDecided: (replica, txnId, decision) => this.track(txnId)?.learn(replica, decision),
          log: (line) => this.log(line),
        }),
      );
    }
  }

  log(line: string): void {
    if (this.options.transcript) this.transcript.push(`${String(this.clock.now()).padStart(7)} ${line}`);
  }

  start(): void {
    for (const r of this.replicas) r.start();
    this.rebalance('start');
  }

  // --- one step of the timeline -------------------------------------------------------

  async step(): Promise<boolean> {
    if (!this.clock.step()) return false;
    await this.clock.drain();
    this.steps++;
    this.checkDirty();
    return true;
  }

  private checkDirty(): void {
    for (const txnId of this.dirty) {
      const track = this.tracks.get(txnId);
      if (!track || track.violated) continue;
      const after = track.snapshot();
      const found = checkCommitInvariants(this.snapshots.get(txnId)!, after);
      this.snapshots.set(txnId, after);
      if (found) this.violate(found.invariant, txnId, found.detail);
    }
    this.dirty.clear();
  }

  violate(invariant: ProdViolationName, txnId: string, detail: string): void {
    const track = this.tracks.get(txnId);
    if (track) track.violated = true;
    this.violations.push({ invariant, txnId, detail, step: this.steps, at: this.clock.now() });
    this.log(`VIOLATION ${invariant} ${txnId}: ${detail}`);
  }

  private track(txnId: string): TxnTrack | undefined {
    this.dirty.add(txnId);
    return this.tracks.get(txnId);
  }

  private onLogChange(kind: string, txnId: string): void {
    const row = this.store.peek(txnId)!;
    if (kind === 'created') {
      const track = new TxnTrack(txnId, row.participants.map((p) => p.name), this.clock.now());
      this.tracks.set(txnId, track);
      this.snapshots.set(txnId, track.snapshot());
      this.log(`log: ${txnId.slice(0, 8)} created by ${row.ownerId} on partition ${row.partition} for ${track.rms.join(',')}`);
      return;
    }
    if (kind === 'decided' || row.decision !== null) {
      const first = this.loggedDecision.get(txnId);
      if (first === undefined && row.decision) {
        this.loggedDecision.set(txnId, row.decision);
        this.track(txnId)?.learn('log', row.decision);
        this.log(`log: ${txnId.slice(0, 8)} decided ${row.decision} (${row.decisionReason}) by ${row.ownerId} epoch ${row.epoch}`);
      } else if (first !== undefined && row.decision !== first) {
        this.violate('decisionStable', txnId, `the log held ${first} and now holds ${row.decision}`);
      }
    }
    if (kind === 'completed') this.log(`log: ${txnId.slice(0, 8)} complete`);
  }

  private onRmRecord(txnId: string, rm: string, kind: 'prepared' | 'committed' | 'aborted'): void {
    const track = this.track(txnId);
    const was = track?.rmState[rm];
    track?.record(rm, kind);
    this.log(`${rm} ${txnId.slice(0, 8)}: ${kind}`);
    const logged = this.store.peek(txnId)?.decision ?? null;
    const needs = kind === 'committed' ? 'COMMIT' : kind === 'aborted' && was === 'prepared' ? 'ABORT' : undefined;
    if (needs && logged !== needs) this.violate('durability', txnId, `${rm} ${kind} while the log holds ${logged ?? 'no decision'}`);
  }

  private toRm(rm: string, envelope: Envelope): void {
    this.log(`-> ${rm} ${envelope.type} ${envelope.txnId.slice(0, 8)} from ${envelope.from} epoch ${envelope.epoch}`);
    this.participants.receive(rm, envelope);
  }

  // --- the consumer group -------------------------------------------------------------

  /** Kafka's assignment over the current members (round robin from a random rotation); GROUP_JOIN reaches each at its own moment. */
  rebalance(why: string): void {
    const generation = ++this.groupGeneration;
    const members = this.replicas.filter((r) => r.inGroup && !r.process.dead);
    const rotation = this.rng.int(0, Math.max(0, members.length - 1));
    const parts = new Map(members.map((m) => [m, [] as number[]]));
    for (let p = 0; p < this.kafka.partitionCount; p++) parts.get(members[(p + rotation) % members.length])?.push(p);
    this.log(`rebalance (${why}): ${members.map((m) => `${m.id}=[${parts.get(m)!.join(',')}]`).join(' ') || 'no members'}`);
    for (let p = 0; p < this.kafka.partitionCount; p++) {
      const owner = this.kafka.ownerOf(p) as SimReplica | undefined;
      if (owner && !members.includes(owner)) this.kafka.setOwner(p, undefined);
    }
    for (const [member, assigned] of parts) {
      this.clock.at(this.rng.int(0, 20), () => {
        if (generation !== this.groupGeneration || member.process.dead) return;
        for (const p of member.ownedPartitions()) if (!assigned.includes(p) && this.kafka.ownerOf(p) === member) this.kafka.setOwner(p, undefined);
        for (const p of assigned) this.kafka.setOwner(p, member);
        member.assign(assigned);
      });
    }
  }

  // --- faults -------------------------------------------------------------------------

  startChaos(): void {
    if (this.options.faults.chaosEveryMs <= 0) return;
    const next = (): void => {
      if (!this.faultsOn) return;
      this.chaos();
      this.clock.at(this.rng.int(1, 2 * this.options.faults.chaosEveryMs), next);
    };
    this.clock.at(this.rng.int(1, 2 * this.options.faults.chaosEveryMs), next);
  }

  private chaos(): void {
    const r = this.rng.pick(this.replicas);
    const choice = this.rng.int(0, 5);
    if (choice === 0 && r.process.up) {
      this.log(`chaos: ${r.id} crashes`);
      r.crash();
      this.clock.at(SESSION_TIMEOUT_MS, () => this.leaveGroup(r, r.incarnation));
      this.clock.at(this.rng.int(300, 3000), () => this.restartReplica(r));
    } else if (choice === 1 && r.process.up && this.options.faults.pauses) {
      this.log(`chaos: ${r.id} pauses`);
      const process = r.process;
      process.pause();
      this.clock.at(SESSION_TIMEOUT_MS, () => process.paused && this.leaveGroup(r, r.incarnation));
      this.clock.at(this.rng.int(100, 2500), () => this.resumeReplica(r, process));
    } else if (choice === 2 && r.process.up) {
      this.log(`chaos: ${r.id}'s consumer stops; it rejoins later`);
      for (const p of r.ownedPartitions()) if (this.kafka.ownerOf(p) === r) this.kafka.setOwner(p, undefined);
      r.assign([]);
      this.clock.at(this.rng.int(10, 800), () => this.rebalance(`${r.id} rejoins`));
    } else if (choice === 3) {
      this.rebalance('partitions move');
    } else {
      const rm = this.rng.pick(this.participants.names());
      if (!this.participants.isUp(rm)) return;
      this.participants.crash(rm);
      this.clock.at(this.rng.int(100, 3000), () => this.participants.restart(rm));
    }
  }

  private leaveGroup(r: SimReplica, incarnation: number): void {
    if (r.incarnation !== incarnation || r.process.up || !r.inGroup) return;
    r.inGroup = false;
    this.rebalance(`${r.id} left the group`);
  }

  private restartReplica(r: SimReplica): void {
    if (!r.process.dead) return;
    this.log(`${r.id} restarts`);
    r.start();
    r.inGroup = true;
    this.rebalance(`${r.id} joins`);
  }

  private resumeReplica(r: SimReplica, process: SimReplica['process']): void {
    if (r.process !== process || !process.paused) return;
    this.log(`${r.id} resumes`);
    process.resume();
    this.kafka.kickAll();
    if (!r.inGroup) {
      r.inGroup = true;
      this.rebalance(`${r.id} rejoins after its pause`);
    }
  }

  /** Faults stop: every crashed process restarts, every paused one resumes, the group settles. */
  heal(): void {
    this.faultsOn = false;
    this.log('--- faults stop; crashed processes restart; paused ones resume ---');
    for (const r of this.replicas) {
      if (r.process.dead) r.start();
      else if (r.process.paused) r.process.resume();
      r.inGroup = true;
    }
    for (const rm of this.participants.names()) this.participants.restart(rm);
    this.kafka.kickAll();
    this.rebalance('heal');
  }

  // --- clients ------------------------------------------------------------------------

  startClients(meanGapMs: number): void {
    const next = (): void => {
      if (!this.faultsOn) return;
      void this.request();
      this.clock.at(this.rng.int(1, 2 * meanGapMs), next);
    };
    this.clock.at(0, next);
  }

  private async request(): Promise<void> {
    const r = this.rng.pick(this.replicas);
    const rms = this.rng.subset(this.participants.names(), 2);
    const outcome = await r.create(rms, this.rng.int(200, 800));
    if (outcome.status === 'accepted') this.accepted.add(outcome.txnId);
    else this.log(`client: ${r.id} ${outcome.status}: ${outcome.reason}`);
  }

  // --- liveness -----------------------------------------------------------------------

  unfinished(): string[] {
    return this.store.ids().filter((id) => {
      const row = this.store.peek(id)!;
      return row.completedAt === null || row.decision === null;
    });
  }

  checkFinal(boundMs: number): void {
    for (const id of this.accepted) if (!this.store.peek(id)) this.violate('noLostWork', id, 'accepted by the API but not in the log');
    for (const id of this.unfinished()) {
      const row = this.store.peek(id)!;
      const track = this.tracks.get(id);
      if (track?.violated) continue;
      const rms = row.participants.map((p) => `${p.name}=${this.participants.rmState(p.name, id) ?? 'none'}${p.ackedAt ? '(acked)' : ''}`).join(' ');
      const running = this.replicas.filter((r) => !r.process.dead && r.ownedPartitions().includes(row.partition)).map((r) => r.id);
      this.violate('termination', id, `unfinished ${boundMs} ms after healing: decision ${row.decision ?? 'none'}, owner ${row.ownerId} epoch ${row.epoch}, partition ${row.partition} held by ${running.join(',') || 'nobody'}; ${rms}`);
    }
  }
}

function configFor(coordinatorId: string): AppConfig {
  return {
    coordinatorId,
    failpoints: [],
    resendIntervalMs: 200,
    leaseDurationMs: LEASE_MS,
    kafkaSessionTimeoutMs: SESSION_TIMEOUT_MS,
    participantTtlMs: 2000,
    precommitAckTimeoutMs: 300,
    kafkaPartitions: 6,
  } as unknown as AppConfig;
}
