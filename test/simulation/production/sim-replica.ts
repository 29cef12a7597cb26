/**
 * One coordinator replica made of production objects: a TwoPhaseDriver on the real
 * TransactionRuntime, the real PartitionOwnership and the real TakeoverService, wired as
 * CoordinatorModule wires them but without Nest, over this incarnation's ports (faulty
 * decision-log connection, simulated Kafka publisher, a Clock that stops while paused).
 * `create` does what TransactionsService.create does after its registry check: claim an id
 * on an owned partition, mark it expected, log it, begin it. The registry is a small fake
 * (every participant known, never reported down, topic names from the Topics convention):
 * the failure detector is not what this simulator tests.
 */
import { AppConfig } from '../../../src/config/app-config';
import { DecisionWaiters } from '../../../src/coordinator/decision-waiters';
import { PartitionOwnership } from '../../../src/transport/kafka/partition-ownership';
import { ProtocolDriver, ProtocolDrivers } from '../../../src/coordinator/protocol-driver';
import { DriverDependencies } from '../../../src/coordinator/protocol-driver.base';
import { TakeoverService } from '../../../src/coordinator/takeover.service';
import { TwoPhaseDriver } from '../../../src/coordinator/two-phase/two-phase.driver';
import { DecisionLogRepository } from '../../../src/decision-log/decision-log.repository';
import { ParticipantRegistry } from '../../../src/registry/participant-registry.service';
import { TransactionEvents } from '../../../src/telemetry/transaction-events';
import { Envelope } from '../../../src/transport/kafka/envelope';
import { Topics } from '../../../src/transport/kafka/topics';
import { Prng } from '../prng';
import { FaultyDecisionLog, SimProcess, StorageFaults, StorageStats, processClock } from './process';
import { CoordinatorConsumer, NetworkFaults, SimKafka, SimPublisher } from './sim-kafka';

export type DriverFactory = (deps: DriverDependencies) => ProtocolDriver & { onApplicationShutdown(): void };

export interface ReplicaWorld {
  readonly store: DecisionLogRepository;
  readonly kafka: SimKafka;
  readonly rng: Prng;
  readonly topics: Topics;
  readonly participantOf: (topic: string) => string | undefined;
  readonly storageFaults: () => StorageFaults | undefined;
  readonly networkFaults: () => NetworkFaults | undefined;
  readonly storageStats: StorageStats;
  readonly config: (coordinatorId: string) => AppConfig;
  readonly driver: DriverFactory;
  readonly onDecided: (replica: string, txnId: string, decision: 'COMMIT' | 'ABORT') => void;
  readonly log: (line: string) => void;
}

const fakeRegistry = {
  topicOf: () => undefined,
  onParticipantDown: () => undefined,
  instanceOf: () => undefined,
  list: async () => [],
} as unknown as ParticipantRegistry;

export type CreateOutcome = { readonly status: 'accepted'; readonly txnId: string } | { readonly status: 'refused' | 'failed'; readonly reason: string };

export class SimReplica implements CoordinatorConsumer {
  process: SimProcess;
  incarnation = 0;
  /** Whether the consumer group counts this replica as a member. */
  inGroup = true;
  private driver!: ProtocolDriver & { onApplicationShutdown(): void };
  private drivers!: ProtocolDrivers;
  private ownership!: PartitionOwnership;
  private takeover!: TakeoverService;
  private log!: DecisionLogRepository;

  constructor(
    readonly id: string,
    private readonly world: ReplicaWorld,
  ) {
    this.process = new SimProcess(id);
    this.process.kill();
  }

  /** A fresh process over the shared log: nothing of an earlier incarnation survives. */
  start(): void {
    this.incarnation++;
    const w = this.world;
    this.process = new SimProcess(`${this.id}#${this.incarnation}`);
    const config = w.config(this.id);
    this.log = new FaultyDecisionLog(w.store, this.process, w.rng, w.storageFaults, w.storageStats);
    const publisher = new SimPublisher(this.process, w.kafka, w.participantOf, w.rng, w.networkFaults).asKafkaPublisher();
    const events = new TransactionEvents();
    const id = this.id;
    events.subscribe((event) => event.type === 'decided' && w.onDecided(id, event.txnId, event.decision));
    const deps = new DriverDependencies(config, w.topics, this.log, publisher, fakeRegistry, new DecisionWaiters(), events, processClock(this.process));
    this.driver = w.driver(deps);
    this.drivers = new ProtocolDrivers([this.driver]);
    this.ownership = new PartitionOwnership();
    this.ownership.setPartitionCount(w.kafka.partitionCount);
    this.takeover = new TakeoverService(config, this.log, this.ownership, this.drivers, events);
    this.takeover.onModuleInit();
  }

  /** The process dies: memory, timers and whatever it had in flight are gone. */
  crash(): void {
    this.process.kill();
    // The dead process's intervals stop with it (they are global fake timers, not held by the port).
    this.takeover.onApplicationShutdown();
  }

  ownedPartitions(): number[] {
    return this.process.dead ? [] : this.ownership.ownedPartitions();
  }

  /** A GROUP_JOIN (or, with [], a consumer stop) as PrefixedKafkaServer reports it. */
  assign(partitions: readonly number[]): void {
    if (!this.process.dead) this.ownership.assign(partitions);
  }

  /** What CoordinatorMessagesController does with one message of the coordinator topic. */
  async deliver(envelope: Envelope): Promise<void> {
    this.world.log(`=> ${this.id} ${envelope.type} ${envelope.txnId.slice(0, 8)} from ${envelope.from} epoch ${envelope.epoch}`);
    if (!this.drivers.has(envelope.protocol)) return this.world.kafka.stats.deadLettered++, undefined;
    const handled = await this.drivers.for(envelope.protocol).deliver(envelope);
    if (!handled) this.world.kafka.stats.deadLettered++;
  }

  async create(rms: readonly string[], timeoutMs: number): Promise<CreateOutcome> {
    if (!this.process.up) return { status: 'refused', reason: 'replica not up' };
    const owned = this.ownership.ownedPartitions();
    if (owned.length === 0) return { status: 'refused', reason: 'no partition held' };
    let id = uuidFrom(this.world.rng);
    for (let i = 0; i < 256 && !owned.includes(this.world.kafka.partitionOf(id)); i++) id = uuidFrom(this.world.rng);
    const partition = this.world.kafka.partitionOf(id);
    if (!owned.includes(partition)) return { status: 'refused', reason: 'no id found on an owned partition' };
    const driver = this.driver;
    driver.expect(id);
    let result;
    try {
      result = await this.log.createTransaction({
        id,
        partition,
        leaseMs: this.world.config(this.id).leaseDurationMs,
        protocol: driver.protocol,
        participants: rms.map((name) => ({ name, payload: { amount: 1 } })),
        timeoutMs,
        idempotencyKey: null,
        requestHash: id,
        ownerId: this.id,
        traceContext: null,
      });
    } catch (error) {
      return { status: 'failed', reason: (error as Error).message };
    } finally {
      if (!result?.created) driver.unexpect(id);
    }
    void driver.begin(result.transaction);
    return { status: 'accepted', txnId: id };
  }
}

export const twoPhaseDriver: DriverFactory = (deps) => new TwoPhaseDriver(deps);

function uuidFrom(rng: Prng): string {
  const hex = Array.from({ length: 32 }, () => rng.int(0, 15).toString(16));
  hex[12] = '4';
  hex[16] = ((rng.int(0, 3) & 0x3) | 0x8).toString(16);
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}
