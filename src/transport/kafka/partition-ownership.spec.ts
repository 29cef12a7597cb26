/**
 * Partition ownership: listeners hear every assignment, also one that hands back the same
 * partitions (a replica paused past its lease rejoins onto them), while the log line is
 * written only when the partitions really change.
 */
import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OwnershipChange, PartitionOwnership } from './partition-ownership';

afterEach(() => vi.restoreAllMocks());

describe('PartitionOwnership.assign', () => {
  it('tells listeners about every assignment, unchanged ones included, and logs only changes', () => {
    const logged = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const ownership = new PartitionOwnership();
    const heard: OwnershipChange[] = [];
    ownership.subscribe((change) => heard.push(change));

    ownership.assign([2, 0]);
    ownership.assign([0, 2]);
    ownership.assign([2, 3]);
    ownership.assign([]);

    expect(heard).toEqual([
      { added: [0, 2], removed: [], owned: [0, 2] },
      { added: [], removed: [], owned: [0, 2] },
      { added: [3], removed: [0], owned: [2, 3] },
      { added: [], removed: [2, 3], owned: [] },
    ]);
    expect(logged).toHaveBeenCalledTimes(3);
    expect(ownership.ownedPartitions()).toEqual([]);
  });
});
