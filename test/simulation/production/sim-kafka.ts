/**
 * Kafka as the coordinator replicas see it. The coordinator topic has a fixed number of
 * partitions; a participant's reply lands on the partition of its transaction id (the real
 * partitioner of PartitionOwnership), and the replica the group assigned that partition to
 * reads it, one message at a time, committing the offset once its handler resolved. A
 * partition whose owner crashed or paused keeps its messages; when it moves, the new owner
 * reads from the last committed offset, so a message in flight at the move is read twice.
 * Producers (participants, and the replicas through SimPublisher) lose, duplicate and delay
 * messages on their way to the broker while faults are on, which reorders them.
 */
import { PartitionOwnership } from '../../../src/transport/kafka/partition-ownership';
import { Envelope } from '../../../src/transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../../src/transport/kafka/kafka-publisher';
import { Prng } from '../prng';
import { SimProcess } from './process';

export interface NetworkFaults {
  readonly drop: number;
  readonly duplicate: number;
  readonly maxDelayMs: number;
  /** A whole `publish` call fails (the broker did not take the batch). */
  readonly publishFail: number;
}

export interface NetworkStats {
  produced: number;
  dropped: number;
  duplicated: number;
  delivered: number;
  redelivered: number;
  deadLettered: number;
}

/** A replica as a member of the coordinators' consumer group. */
export interface CoordinatorConsumer {
  readonly id: string;
  readonly process: SimProcess;
  /** Which start of the replica this is: a restarted replica reads its partitions afresh. */
  readonly incarnation: number;
  /** Handles one message; a rejection leaves the offset where it was. */
  deliver(envelope: Envelope): Promise<void>;
}

interface PartitionLog {
  readonly log: Envelope[];
  committed: number;
  owner: CoordinatorConsumer | undefined;
  ownerIncarnation: number;
  generation: number;
  busy: boolean;
}

type At = (afterMs: number, fire: () => void) => unknown;

export class SimKafka {
  readonly stats: NetworkStats = { produced: 0, dropped: 0, duplicated: 0, delivered: 0, redelivered: 0, deadLettered: 0 };
  private readonly partitions: PartitionLog[];
  private readonly router = new PartitionOwnership();

  constructor(
    readonly partitionCount: number,
    private readonly rng: Prng,
    private readonly at: At,
    private readonly faults: () => NetworkFaults | undefined,
    private readonly toParticipant: (rm: string, envelope: Envelope) => void,
  ) {
    this.router.setPartitionCount(partitionCount);
    this.partitions = Array.from({ length: partitionCount }, () => ({ log: [], committed: 0, owner: undefined, ownerIncarnation: 0, generation: 0, busy: false }));
  }

  partitionOf(txnId: string): number {
    return this.router.partitionOf(txnId);
  }

  /** A participant's reply to the coordinators. */
  toCoordinators(envelope: Envelope): void {
    const partition = this.partitionOf(envelope.txnId);
    this.produce(() => this.append(partition, envelope));
  }

  /** A coordinator's message to participant `rm`. */
  toParticipantTopic(rm: string, envelope: Envelope): void {
    this.produce(() => this.toParticipant(rm, envelope));
  }

  /** The group moved `partition` to `owner` (undefined: nobody reads it for now). */
  setOwner(partition: number, owner: CoordinatorConsumer | undefined): void {
    const p = this.partitions[partition];
    if (p.owner === owner && p.ownerIncarnation === (owner?.incarnation ?? 0)) return;
    p.owner = owner;
    p.ownerIncarnation = owner?.incarnation ?? 0;
    p.generation++;
    p.busy = false;
    this.kick(partition);
  }

  ownerOf(partition: number): CoordinatorConsumer | undefined {
    return this.partitions[partition].owner;
  }

  kickAll(): void {
    for (let p = 0; p < this.partitionCount; p++) this.kick(p);
  }

  /** Messages not yet committed, over all partitions. */
  backlog(): number {
    return this.partitions.reduce((n, p) => n + p.log.length - p.committed, 0);
  }

  private produce(land: () => void): void {
    this.stats.produced++;
    const faults = this.faults();
    if (faults && this.rng.chance(faults.drop)) {
      this.stats.dropped++;
      return;
    }
    const copies = faults && this.rng.chance(faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) this.at(faults ? this.rng.int(0, faults.maxDelayMs) : this.rng.int(0, 2), land);
  }

  private append(partition: number, envelope: Envelope): void {
    this.partitions[partition].log.push(envelope);
    this.kick(partition);
  }

  private kick(partition: number): void {
    const p = this.partitions[partition];
    const owner = p.owner;
    if (p.busy || !owner || !owner.process.up || p.committed >= p.log.length) return;
    p.busy = true;
    const generation = p.generation;
    const offset = p.committed;
    this.at(this.rng.int(0, 2), () => {
      if (p.generation !== generation) return;
      if (!owner.process.up) {
        p.busy = false;
        return;
      }
      this.stats.delivered++;
      const stillOurs = (): boolean => p.generation === generation && p.committed === offset;
      owner.deliver(p.log[offset]).then(
        () => {
          if (!stillOurs()) return void this.stats.redelivered++;
          p.committed++;
          p.busy = false;
          this.kick(partition);
        },
        () => {
          if (!stillOurs()) return;
          p.busy = false;
          // kafkajs retries a failed handler after a backoff, from the same offset.
          this.at(100, () => this.kick(partition));
        },
      );
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The KafkaPublisher of one replica incarnation: only what the coordinator drivers call
 * (`publish`, `deadLetter`, `isConnected`). A batch is handed to the simulated network,
 * and `publish` resolves once the "broker" has it.
 */
export class SimPublisher {
  constructor(
    private readonly process: SimProcess,
    private readonly kafka: SimKafka,
    private readonly participantOf: (topic: string) => string | undefined,
    private readonly rng: Prng,
    private readonly faults: () => NetworkFaults | undefined,
  ) {}

  asKafkaPublisher(): KafkaPublisher {
    return this as unknown as KafkaPublisher;
  }

  isConnected(): boolean {
    return this.process.up;
  }

  async publish(messages: readonly OutboundMessage[]): Promise<void> {
    await this.process.gate();
    const faults = this.faults();
    if (faults && this.rng.chance(faults.publishFail)) {
      await sleep(this.rng.int(1, 20));
      throw new Error('KafkaJSNumberOfRetriesExceeded (simulated)');
    }
    for (const message of messages) {
      const rm = this.participantOf(message.topic);
      if (rm === undefined) throw new Error(`no participant reads topic ${message.topic}`);
      this.kafka.toParticipantTopic(rm, message.envelope);
    }
    await sleep(this.rng.int(0, 2));
    await this.process.gate();
  }

  async deadLetter(): Promise<void> {
    this.kafka.stats.deadLettered++;
  }
}
