/**
 * What the simulated world needs from each protocol: how a client request, a message, a
 * timer and a restart become inputs of the production cores, and how to read the cores'
 * states back for the invariants. The adapters hold the cores' volatile states; the world
 * holds everything durable and decides what the network, the clock and the faults do.
 */
import { Decision } from '../../src/protocols/common/effects';
import { Vote } from '../../src/protocols/two-phase/messages';

export type ProtocolName = '2pc' | '3pc' | 'paxos-commit';
export const PROTOCOLS: readonly ProtocolName[] = ['2pc', '3pc', 'paxos-commit'];

export interface SimMessage {
  readonly type: string;
  readonly txnId: string;
}

export type SimEffect =
  | { readonly kind: 'persist'; readonly record: unknown }
  | { readonly kind: 'send'; readonly to: string; readonly message: SimMessage }
  | { readonly kind: 'setTimer'; readonly timer: string; readonly afterMs: number }
  | { readonly kind: 'decide'; readonly decision: Decision }
  | { readonly kind: 'runPrepare' };

/** One input for one role of one transaction at a node. */
export interface Delivery {
  readonly txnId: string;
  readonly role: string;
  readonly input: unknown;
}

/** What the world tells an adapter: durable records and the failure detector's opinions. */
export interface Host {
  records(node: string, txnId: string, role: string): readonly unknown[];
  durableKeys(node: string): readonly { txnId: string; role: string }[];
  /** The node crashed while it held state for the transaction (3PC's notion of failed). */
  failed(txnId: string, node: string): boolean;
  /** The failure detector at `observer`: does it consider `node` failed for this transaction? */
  suspects(observer: string, txnId: string, node: string, deferrals: number): boolean;
  /**
   * Leader election as seen by `replica` (Paxos Commit's Omega): the replica that took the
   * client's request leads while it is up and reachable, else the lowest reachable replica.
   */
  believesLeader(replica: string, txnId: string): boolean;
  isHealed(): boolean;
  isUp(node: string): boolean;
}

export type TimerOutcome = { readonly deliver: unknown } | 'defer' | 'ignore';

export interface ProtocolAdapter {
  readonly protocol: ProtocolName;
  readonly nodes: readonly string[];
  readonly rmPool: readonly string[];
  /** Where the client's request lands; undefined when no node can take it now. */
  begin(txnId: string, rms: readonly string[], host: Host, pickReplica: (up: readonly string[]) => string): { node: string; delivery: Delivery } | undefined;
  onMessage(node: string, message: SimMessage, host: Host): Delivery[];
  onTimer(node: string, txnId: string, role: string, timer: string, host: Host, deferrals: number): TimerOutcome;
  localVote(vote: Vote): unknown;
  step(node: string, delivery: Delivery, host: Host): readonly SimEffect[];
  hasState(node: string, txnId: string): boolean;
  crash(node: string): void;
  restart(node: string, host: Host): Delivery[];
  /** How an RM's durable record bears on the invariants. */
  classify(role: string, record: unknown): 'prepared' | 'committed' | 'aborted' | undefined;
  /** Whether the protocol may leave this transaction unfinished even after healing. */
  mayBlock(txnId: string, rms: readonly string[], host: Host): boolean;
  /** A coordinator-side role still holds the transaction undecided (the client still waits). */
  coordinatorPending(txnId: string): boolean;
  /** Every RM must reach an outcome (true), or only those that ever held state (false). */
  readonly everyRmFinishes: boolean;
}
