/**
 * Topics of Paxos Commit. Each replica has two point-to-point topics that it alone reads: one
 * for its acceptor role and one for its leader role. Heartbeats share one topic that every
 * replica reads in full. The participant topics (`P.rm.<name>`) and `P.coordinator` are the
 * ones two-phase commit uses.
 */
export interface PaxosCommitTopics {
  /** To acceptor `id`: PHASE2A (from participants and leaders), PHASE1A, QUERY. Keyed by transaction id. */
  acceptor(id: string): string;
  /** To leader `id`: PHASE1B, PHASE2B, HANDOVER. Keyed by transaction id. */
  leader(id: string): string;
  /** HEARTBEAT of every replica, keyed by replica id; short retention, since only the latest matters. */
  readonly replicas: string;
}

export function paxosCommitTopicsFor(prefix: string): PaxosCommitTopics {
  return {
    acceptor: (id) => `${prefix}.acceptor.${id}`,
    leader: (id) => `${prefix}.leader.${id}`,
    replicas: `${prefix}.replicas`,
  };
}
