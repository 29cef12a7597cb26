/**
 * Which partitions of the coordinator topic this replica holds. Replicas form one Kafka
 * consumer group, so Kafka itself spreads the partitions over the live replicas and moves a
 * dead replica's partitions to the others. A transaction lives on the partition of its id
 * (the key of every message about it), so the replica holding that partition receives all
 * of its votes and acks, and that replica owns it.
 */
import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { PartitionMetadata, Partitioners } from 'kafkajs';

/**
 * One assignment from the consumer group. Listeners hear every one, also when the
 * partitions come back unchanged: a replica that was paused past its lease and rejoined onto
 * the same partitions must still look at what happened to its transactions meanwhile.
 */
export interface OwnershipChange {
  readonly added: readonly number[];
  readonly removed: readonly number[];
  /** The full assignment, sorted. */
  readonly owned: readonly number[];
}

export type OwnershipListener = (change: OwnershipChange) => void;

// The partitioner kafkajs producers use by default (murmur2, as Java clients), so the
// partition computed here is the one a participant's reply lands on.
const partitioner = Partitioners.DefaultPartitioner();
const NEW_ID_ATTEMPTS = 256;

@Injectable()
export class PartitionOwnership {
  private readonly logger = new Logger(PartitionOwnership.name);
  private owned = new Set<number>();
  private metadata: PartitionMetadata[] = [];
  private readonly listeners: OwnershipListener[] = [];

  setPartitionCount(count: number): void {
    this.metadata = Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
  }

  subscribe(listener: OwnershipListener): void {
    this.listeners.push(listener);
  }

  /** The full assignment after a rebalance; an empty list when the consumer stopped for good. */
  assign(partitions: readonly number[]): void {
    const next = new Set(partitions);
    const added = [...next].filter((p) => !this.owned.has(p)).sort((a, b) => a - b);
    const removed = [...this.owned].filter((p) => !next.has(p)).sort((a, b) => a - b);
    const owned = [...next].sort((a, b) => a - b);
    this.owned = next;
    if (added.length > 0 || removed.length > 0) {
      this.logger.log(`partitions now ${owned.join(',') || 'none'} (added ${added.join(',') || '-'}, removed ${removed.join(',') || '-'})`);
    }
    for (const listener of this.listeners) listener({ added, removed, owned });
  }

  ownedPartitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  owns(partition: number): boolean {
    return this.owned.has(partition);
  }

  partitionOf(txnId: string): number {
    if (this.metadata.length === 0) throw new Error('the coordinator topic has no partitions yet');
    return partitioner({ topic: '', partitionMetadata: this.metadata, message: { key: txnId, value: null } });
  }

  /** A fresh transaction id on a partition this replica holds, or undefined while it holds none. */
  newTransactionId(): { id: string; partition: number } | undefined {
    if (this.owned.size === 0) return undefined;
    for (let i = 0; i < NEW_ID_ATTEMPTS; i++) {
      const id = randomUUID();
      const partition = this.partitionOf(id);
      if (this.owned.has(partition)) return { id, partition };
    }
    return undefined;
  }
}
