/**
 * The checkout that the end-to-end and fault tests run against the example services: the
 * request that creates one, what each service keeps about it, the coordinator's view of it
 * while it is decided and completed, and the conservation check over the three databases.
 * Nothing here asserts, so that every expectation stays in the test that states it; these
 * helpers only build, fetch and wait.
 */
import { ConservationResult, checkConservation } from '../../examples/common/conservation';
import { PARTICIPANT_LOG_TABLE } from '../../src/participant-sdk/participant-log.repository';
import { PAXOS_COMMIT_LOG_TABLE } from '../../src/participant-sdk/paxos-commit-log.repository';
import { THREE_PHASE_LOG_TABLE } from '../../src/participant-sdk/three-phase-log.repository';
import type { ProtocolName } from '../../src/transport/kafka/envelope';
import { Cluster, SERVICES, ServiceName } from './cluster';
import { waitUntil } from './processes';

export type Outcome = 'COMMIT' | 'ABORT';

export interface CheckoutOptions {
  /** 'sku-1' unless given. */
  readonly sku?: string;
  /** 1 unless given. */
  readonly qty?: number;
  /** 'acct-1' unless given. */
  readonly account?: string;
  /** 100 per unit unless given. */
  readonly amount?: number;
  /** The transaction's timeout; the coordinator's default unless given. */
  readonly timeoutMs?: number;
  /** More participants after the three services, such as a fake one that votes on cue. */
  readonly extra?: readonly { name: string; payload?: unknown }[];
}

/** The body of POST /v1/transactions for one order: reserve stock, hold money, record the order. */
export function checkoutBody(protocol: ProtocolName, orderId: string, options: CheckoutOptions = {}) {
  const { sku = 'sku-1', qty = 1, account = 'acct-1', amount = 100 * qty, timeoutMs, extra = [] } = options;
  return {
    protocol,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    participants: [
      { name: 'inventory', payload: { sku, qty } },
      { name: 'payments', payload: { account, amount } },
      { name: 'orders', payload: { orderId, sku, qty, account, amount } },
      ...extra,
    ],
  };
}

export interface Initial {
  /** Stock per sku as seeded. */
  readonly stock: Readonly<Record<string, number>>;
  /** All account balances as seeded, added up. */
  readonly money: number;
}

/** What a Cluster seeds when the test names no seeds: 'sku-1:100,sku-2:5' and 'acct-1:100000,acct-2:100'. */
export const DEFAULT_SEEDS: Initial = { stock: { 'sku-1': 100, 'sku-2': 5 }, money: 100_000 + 100 };

/** The conservation check over the cluster's three service databases, against what they were seeded with. */
export function conservation(cluster: Cluster, initial: Initial = DEFAULT_SEEDS): Promise<ConservationResult> {
  return checkConservation({
    inventoryUrl: cluster.databases.inventory,
    paymentsUrl: cluster.databases.payments,
    ordersUrl: cluster.databases.orders,
    initialStock: initial.stock,
    initialMoney: initial.money,
  });
}

export interface BusinessStates {
  readonly reservation: string;
  readonly hold: string;
  readonly order: string;
}

/** Where each service's own tables and its protocol log end for a transaction with that outcome. */
export const FINAL_STATES: Readonly<Record<Outcome, { readonly business: BusinessStates; readonly log: string }>> = {
  COMMIT: { business: { reservation: 'committed', hold: 'captured', order: 'confirmed' }, log: 'committed' },
  ABORT: { business: { reservation: 'released', hold: 'released', order: 'cancelled' }, log: 'aborted' },
};

/**
 * The state of the transaction's reservation, hold and order, 'none' where a service has no
 * row. With `noRowMeansAborted`, a missing row reads as aborted instead: a service that never
 * heard of the transaction (its PREPARE never arrived) has nothing to undo.
 */
export async function businessStates(cluster: Cluster, txnId: string, options: { noRowMeansAborted?: boolean } = {}): Promise<BusinessStates> {
  const absent = (field: keyof BusinessStates) => (options.noRowMeansAborted ? FINAL_STATES.ABORT.business[field] : 'none');
  const state = async (service: ServiceName, table: string, field: keyof BusinessStates) =>
    (await cluster.query(service, `SELECT state FROM ${table} WHERE txn_id = $1`, [txnId]))[0]?.state ?? absent(field);
  return {
    reservation: await state('inventory', 'reservations', 'reservation'),
    hold: await state('payments', 'holds', 'hold'),
    order: await state('orders', 'orders', 'order'),
  };
}

const LOG_TABLES: Record<ProtocolName, string> = {
  '2pc': PARTICIPANT_LOG_TABLE,
  '3pc': THREE_PHASE_LOG_TABLE,
  'paxos-commit': PAXOS_COMMIT_LOG_TABLE,
};

/** Each service's durable protocol state for the transaction, `absent` where it has no log row. */
export async function participantLogStates(cluster: Cluster, protocol: ProtocolName, txnId: string, absent = 'none'): Promise<Record<ServiceName, string>> {
  const states = await Promise.all(
    SERVICES.map(async (name) => (await cluster.query(name, `SELECT state FROM ${LOG_TABLES[protocol]} WHERE txn_id = $1`, [txnId]))[0]?.state ?? absent),
  );
  return Object.fromEntries(SERVICES.map((name, i) => [name, states[i]])) as Record<ServiceName, string>;
}

/** Stock, reservations and sales of one sku in the inventory database. */
export async function stockOf(cluster: Cluster, sku: string): Promise<{ available: number; reserved: number; sold: number }> {
  const [row] = await cluster.query('inventory', 'SELECT available, reserved, sold FROM stock WHERE sku = $1', [sku]);
  return row;
}

export interface ViewOptions {
  /** The replica to ask; the one `cluster.api` talks to unless given. */
  readonly replica?: number;
  /** Passed to waitUntil; its defaults unless given. */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/** GET /v1/transactions/:id, the body only. */
export async function transactionView(cluster: Cluster, txnId: string, replica?: number): Promise<any> {
  const path = `/v1/transactions/${txnId}`;
  return (replica === undefined ? await cluster.api('GET', path) : await cluster.apiOn(replica, 'GET', path)).body;
}

/** Resolves with the transaction's view once the coordinator shows a decision. */
export function waitForDecision(cluster: Cluster, txnId: string, options: ViewOptions = {}): Promise<any> {
  return waitUntil(`transaction ${txnId} to be decided`, async () => {
    const view = await transactionView(cluster, txnId, options.replica);
    return view.decision ? view : undefined;
  }, options.timeoutMs, options.intervalMs);
}

/** Resolves with the transaction's view once every participant acknowledged the decision. */
export function waitForCompletion(cluster: Cluster, txnId: string, options: ViewOptions = {}): Promise<any> {
  return waitUntil(`transaction ${txnId} to complete`, async () => {
    const view = await transactionView(cluster, txnId, options.replica);
    return view.completed ? view : undefined;
  }, options.timeoutMs, options.intervalMs);
}

/** Resolves once each of `names` has voted YES on the transaction, as the coordinator reports. */
export async function waitForYesVotes(cluster: Cluster, txnId: string, names: readonly string[], replica?: number): Promise<void> {
  await waitUntil(`${names.join(' and ')} to vote YES`, async () => {
    const view = await transactionView(cluster, txnId, replica);
    return names.every((name) => view.participants.find((p: { name: string }) => p.name === name)?.vote === 'YES');
  });
}

export interface OutcomeTimes {
  /** The transaction's view once complete. */
  readonly txn: any;
  readonly decisionMs: number;
  readonly completeMs: number;
}

/** Waits on replica `via` for a decision and then for every acknowledgement, timed from `killedAt`. */
export async function outcomeTimes(cluster: Cluster, via: number, txnId: string, killedAt: number): Promise<OutcomeTimes> {
  // Short polling intervals, since the times measured are the point.
  await waitForDecision(cluster, txnId, { replica: via, timeoutMs: 60_000, intervalMs: 10 });
  const decisionMs = Date.now() - killedAt;
  const txn = await waitForCompletion(cluster, txnId, { replica: via, timeoutMs: 60_000, intervalMs: 20 });
  return { txn, decisionMs, completeMs: Date.now() - killedAt };
}

/**
 * Prints a fault run's line, `FAULT <protocol> <scenario> run=<i> decisionMs=<n>` and
 * ` completeMs=<n>` when measured, which scripts/fault-table.ts reads back.
 */
export function reportFault(protocol: ProtocolName, scenario: string, run: number, times: { decisionMs: number; completeMs?: number }): void {
  const complete = times.completeMs === undefined ? '' : ` completeMs=${times.completeMs}`;
  console.log(`FAULT ${protocol} ${scenario} run=${run} decisionMs=${times.decisionMs}${complete}`);
}

/** Runs `body` with the service stopped by SIGSTOP, and continues it afterwards even if `body` fails. */
export async function whileStopped<T>(cluster: Cluster, name: ServiceName, body: (resume: () => void) => Promise<T>): Promise<T> {
  const service = cluster.services.get(name)!;
  const resume = (): void => {
    service.child.kill('SIGCONT');
  };
  service.child.kill('SIGSTOP');
  try {
    return await body(resume);
  } finally {
    resume();
  }
}

/**
 * A participant killed while prepared: with `holdBack` stopped, so that the transaction waits
 * for its vote, starts a transaction with `submit`, waits until every other service voted YES,
 * and kills `victim` with SIGKILL. `holdBack` runs again once this returns.
 */
export async function killAfterYesVote(
  cluster: Cluster,
  { victim, holdBack, replica }: { victim: ServiceName; holdBack: ServiceName; replica?: number },
  submit: () => Promise<string>,
): Promise<{ txnId: string; killedAt: number }> {
  return whileStopped(cluster, holdBack, async () => {
    const txnId = await submit();
    await waitForYesVotes(cluster, txnId, SERVICES.filter((name) => name !== holdBack), replica);
    await cluster.services.get(victim)!.kill('SIGKILL');
    return { txnId, killedAt: Date.now() };
  });
}
