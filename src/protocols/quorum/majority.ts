/**
 * Majority quorums, the arithmetic Paxos Commit (Gray and Lamport 2006, section 4.1) rests on:
 * with 2F+1 acceptors any two sets of F+1 intersect, so a value chosen by one majority is
 * seen by every later phase 1. Kept in one place, as etcd keeps it in quorum/majority.go.
 */
import { invariant } from '../common/assert';

/** The smallest number of members that forms a majority of `n`. */
export function majority(n: number): number {
  invariant(Number.isInteger(n) && n > 0, `a quorum needs a positive member count, got ${n}`);
  return Math.floor(n / 2) + 1;
}

/** How many acceptors tolerate F crashed ones: 2F+1. */
export function acceptorCount(f: number): number {
  invariant(Number.isInteger(f) && f >= 0, `F must be a non-negative integer, got ${f}`);
  return 2 * f + 1;
}

/** The largest F that `n` acceptors tolerate. */
export function faultsTolerated(n: number): number {
  invariant(Number.isInteger(n) && n > 0, `a quorum needs a positive member count, got ${n}`);
  return Math.floor((n - 1) / 2);
}

/**
 * Whether `voters` (ids, duplicates counted once) form a majority of the `members`. Voters
 * outside the membership do not count: a stray or misaddressed reply must not tip a quorum.
 */
export function hasQuorum(voters: Iterable<string>, members: readonly string[]): boolean {
  const distinct = new Set<string>();
  for (const voter of voters) if (members.includes(voter)) distinct.add(voter);
  return distinct.size >= majority(members.length);
}
