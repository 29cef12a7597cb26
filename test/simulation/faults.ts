/**
 * Fault profiles. Every probability applies per message (drop, duplicate, long delay) or per
 * step (crash in the middle of a step, after its writes and part of its sends). Crashes and
 * partitions arrive as chaos events on the simulated clock and always heal before the
 * liveness check.
 */
import { ProtocolName } from './adapter';

export interface FaultProfile {
  readonly drop: number;
  readonly duplicate: number;
  /** A long delay makes a message overtake others: reordering. */
  readonly longDelay: number;
  readonly crashes: boolean;
  readonly crashMidStep: number;
  readonly partitions: boolean;
  /**
   * `perfect`: a node is suspected exactly when it crashed since the transaction began, the
   * synchrony 3PC assumes. `timeouts`: also when unreachable or silent for three periods.
   */
  readonly detector: 'perfect' | 'timeouts';
}

export const NO_FAULTS: FaultProfile = {
  drop: 0,
  duplicate: 0,
  longDelay: 0,
  crashes: false,
  crashMidStep: 0,
  partitions: false,
  detector: 'perfect',
};

const EVERY_FAULT: FaultProfile = {
  drop: 0.05,
  duplicate: 0.05,
  longDelay: 0.05,
  crashes: true,
  crashMidStep: 0.004,
  partitions: false,
  detector: 'timeouts',
};

/**
 * 2PC and Paxos Commit get every fault; `--partitions` adds partitions. 3PC without
 * `--partitions` gets crash faults only (a reliable, if slow and reordering, network and an
 * accurate failure detector); with it, every fault and a timeout detector, which is where
 * the textbook says it splits.
 */
export function faultsFor(protocol: ProtocolName, partitions: boolean): FaultProfile {
  // 3PC's hard cases are a coordinator dying halfway through a broadcast: make them common.
  if (protocol === '3pc' && !partitions) return { ...EVERY_FAULT, drop: 0, crashMidStep: 0.02, detector: 'perfect' };
  return { ...EVERY_FAULT, partitions };
}
