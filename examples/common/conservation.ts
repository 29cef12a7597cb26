/**
 * The conservation check across the three example databases: nothing is created or lost by
 * distributed transactions, whatever crashed on the way.
 *
 * Always true, even mid-flight: per sku, available + reserved + sold equals the initial
 * stock, reserved and sold match the reservations; money sums to the initial total, holds
 * match held amounts, and the merchant received exactly what was captured; no transaction
 * is committed in one service and aborted in another (agreement).
 * True once every transaction has finished: nothing is still held or pending, and stock
 * sold and money captured match the confirmed orders that carry sku / qty / amount.
 * `ok` needs both; `settled` and `inFlight` let a caller wait for the second.
 */
import { Client } from 'pg';
import { DEFAULT_MERCHANT_ACCOUNT } from '../payments/payments.service';

export interface ConservationInput {
  readonly inventoryUrl: string;
  readonly paymentsUrl: string;
  readonly ordersUrl: string;
  /** Stock per sku before any transaction ran. */
  readonly initialStock: Readonly<Record<string, number>>;
  /** Sum of all account balances before any transaction ran (the merchant's included). */
  readonly initialMoney: number;
  /** The account captures are paid into; it must have started at 0. Defaults to `merchant`. */
  readonly merchantAccount?: string;
}

export interface StockLine {
  readonly sku: string;
  readonly initial: number;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
}

export interface ConservationResult {
  readonly ok: boolean;
  /** Invariants that hold at every moment held (nothing was created or lost). */
  readonly consistent: boolean;
  /** No reservation or hold is still held and no order is still pending. */
  readonly settled: boolean;
  readonly inFlight: { readonly heldReservations: number; readonly heldPayments: number; readonly pendingOrders: number };
  readonly stock: readonly StockLine[];
  readonly money: { readonly initial: number; readonly total: number; readonly merchantBalance: number; readonly captured: number };
  readonly orders: { readonly confirmed: number; readonly cancelled: number; readonly pending: number };
  readonly problems: readonly string[];
  /** A readable report, one line each, problems included. */
  readonly details: readonly string[];
}

interface Snapshot {
  stock: { sku: string; available: number; reserved: number; sold: number }[];
  reservations: { txn_id: string; sku: string; qty: number; state: string }[];
  accounts: { id: string; balance: number; held: number }[];
  holds: { txn_id: string; account: string; amount: number; state: string }[];
  orders: { txn_id: string; state: string; details: Record<string, unknown> }[];
}

export async function checkConservation(input: ConservationInput): Promise<ConservationResult> {
  const snapshot = await readSnapshot(input);
  const problems: string[] = [];
  const details: string[] = [];
  const stock = checkStock(input, snapshot, problems, details);
  const money = checkMoney(input, snapshot, problems, details);
  checkAgreement(snapshot, problems, details);
  const inFlight = {
    heldReservations: snapshot.reservations.filter((r) => r.state === 'held').length,
    heldPayments: snapshot.holds.filter((h) => h.state === 'held').length,
    pendingOrders: snapshot.orders.filter((o) => o.state === 'pending').length,
  };
  const settled = inFlight.heldReservations + inFlight.heldPayments + inFlight.pendingOrders === 0;
  const consistent = problems.length === 0;
  const orders = {
    confirmed: snapshot.orders.filter((o) => o.state === 'confirmed').length,
    cancelled: snapshot.orders.filter((o) => o.state === 'cancelled').length,
    pending: inFlight.pendingOrders,
  };
  details.push(`orders: ${orders.confirmed} confirmed, ${orders.cancelled} cancelled, ${orders.pending} pending`);
  details.push(`in flight: ${inFlight.heldReservations} held reservation(s), ${inFlight.heldPayments} held payment(s), ${inFlight.pendingOrders} pending order(s)`);
  if (settled) checkAgainstOrders(snapshot, money.captured, problems, details);
  else problems.push('not settled: some transactions are still in flight');
  for (const problem of problems) details.push(`PROBLEM: ${problem}`);
  return { ok: problems.length === 0, consistent, settled, inFlight, stock, money, orders, problems, details };
}

/** Polls until nothing is in flight (or the time is up) and returns the last result. */
export async function checkConservationWhenSettled(input: ConservationInput, timeoutMs = 30_000, intervalMs = 100): Promise<ConservationResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await checkConservation(input);
    if (result.settled || !result.consistent || Date.now() >= deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function checkStock(input: ConservationInput, snapshot: Snapshot, problems: string[], details: string[]): StockLine[] {
  const lines: StockLine[] = [];
  const skus = new Set([...Object.keys(input.initialStock), ...snapshot.stock.map((s) => s.sku)]);
  for (const sku of [...skus].sort()) {
    const row = snapshot.stock.find((s) => s.sku === sku) ?? { available: 0, reserved: 0, sold: 0 };
    const initial = input.initialStock[sku];
    const line = { sku, initial: initial ?? 0, available: row.available, reserved: row.reserved, sold: row.sold };
    lines.push(line);
    const total = row.available + row.reserved + row.sold;
    details.push(`stock ${sku}: available ${row.available} + reserved ${row.reserved} + sold ${row.sold} = ${total} (initial ${initial ?? 'unknown'})`);
    if (initial === undefined) problems.push(`stock ${sku} exists but has no initial amount`);
    else if (total !== initial) problems.push(`stock ${sku}: ${total} units accounted for, ${initial} expected`);
    const mine = snapshot.reservations.filter((r) => r.sku === sku);
    const held = sum(mine.filter((r) => r.state === 'held').map((r) => r.qty));
    const committed = sum(mine.filter((r) => r.state === 'committed').map((r) => r.qty));
    if (held !== row.reserved) problems.push(`stock ${sku}: reserved ${row.reserved} but held reservations add up to ${held}`);
    if (committed !== row.sold) problems.push(`stock ${sku}: sold ${row.sold} but committed reservations add up to ${committed}`);
  }
  return lines;
}

function checkMoney(input: ConservationInput, snapshot: Snapshot, problems: string[], details: string[]): ConservationResult['money'] {
  const merchantId = input.merchantAccount ?? DEFAULT_MERCHANT_ACCOUNT;
  const total = sum(snapshot.accounts.map((a) => a.balance));
  const merchantBalance = snapshot.accounts.find((a) => a.id === merchantId)?.balance ?? 0;
  const captured = sum(snapshot.holds.filter((h) => h.state === 'captured').map((h) => h.amount));
  details.push(`money: balances add up to ${total} (initial ${input.initialMoney}); merchant ${merchantBalance}, captured ${captured}`);
  if (total !== input.initialMoney) problems.push(`money: balances add up to ${total}, ${input.initialMoney} expected`);
  if (merchantBalance !== captured) problems.push(`money: merchant holds ${merchantBalance} but ${captured} was captured`);
  for (const account of snapshot.accounts) {
    const held = sum(snapshot.holds.filter((h) => h.account === account.id && h.state === 'held').map((h) => h.amount));
    if (held !== account.held) problems.push(`money: account ${account.id} has ${account.held} held but its holds add up to ${held}`);
  }
  return { initial: input.initialMoney, total, merchantBalance, captured };
}

/** No transaction may be committed in one service and aborted in another. */
function checkAgreement(snapshot: Snapshot, problems: string[], details: string[]): void {
  const outcomes = new Map<string, Set<'COMMIT' | 'ABORT'>>();
  const note = (txnId: string, state: string, committed: string, aborted: string): void => {
    const outcome = state === committed ? 'COMMIT' : state === aborted ? 'ABORT' : undefined;
    if (!outcome) return;
    const set = outcomes.get(txnId) ?? new Set();
    set.add(outcome);
    outcomes.set(txnId, set);
  };
  for (const r of snapshot.reservations) note(r.txn_id, r.state, 'committed', 'released');
  for (const h of snapshot.holds) note(h.txn_id, h.state, 'captured', 'released');
  for (const o of snapshot.orders) note(o.txn_id, o.state, 'confirmed', 'cancelled');
  const split = [...outcomes].filter(([, set]) => set.size > 1).map(([txnId]) => txnId);
  details.push(`agreement: ${outcomes.size} finished transaction(s), ${split.length} with different outcomes in different services`);
  for (const txnId of split) problems.push(`agreement: transaction ${txnId} committed in one service and aborted in another`);
}

/** Once settled, what was sold and captured is exactly what the confirmed orders say. */
function checkAgainstOrders(snapshot: Snapshot, captured: number, problems: string[], details: string[]): void {
  const confirmed = snapshot.orders.filter((o) => o.state === 'confirmed');
  const withItems = confirmed.filter((o) => typeof o.details.sku === 'string' && typeof o.details.qty === 'number');
  const orderedBySku = new Map<string, number>();
  for (const order of withItems) orderedBySku.set(order.details.sku as string, (orderedBySku.get(order.details.sku as string) ?? 0) + (order.details.qty as number));
  for (const [sku, qty] of orderedBySku) {
    const sold = snapshot.stock.find((s) => s.sku === sku)?.sold ?? 0;
    if (sold !== qty) problems.push(`orders: ${qty} unit(s) of ${sku} in confirmed orders but ${sold} sold`);
  }
  if (withItems.length > 0) details.push(`orders: stock sold checked against ${withItems.length} confirmed order(s) with sku and qty`);
  const withAmount = confirmed.filter((o) => typeof o.details.amount === 'number');
  if (withAmount.length > 0) {
    const ordered = sum(withAmount.map((o) => o.details.amount as number));
    details.push(`orders: money captured checked against ${withAmount.length} confirmed order(s) with amount`);
    if (withAmount.length === confirmed.length && ordered !== captured) problems.push(`orders: confirmed orders amount to ${ordered} but ${captured} was captured`);
  }
}

async function readSnapshot(input: ConservationInput): Promise<Snapshot> {
  const [inventory, payments, orders] = await Promise.all([
    query(input.inventoryUrl, [
      'SELECT sku, available, reserved, sold FROM stock',
      'SELECT txn_id, sku, qty, state FROM reservations',
    ]),
    query(input.paymentsUrl, [
      'SELECT id, balance::float8 AS balance, held::float8 AS held FROM accounts',
      'SELECT txn_id, account, amount::float8 AS amount, state FROM holds',
    ]),
    query(input.ordersUrl, ['SELECT txn_id, state, details FROM orders']),
  ]);
  return {
    stock: inventory[0] as Snapshot['stock'],
    reservations: inventory[1] as Snapshot['reservations'],
    accounts: payments[0] as Snapshot['accounts'],
    holds: payments[1] as Snapshot['holds'],
    orders: orders[0] as Snapshot['orders'],
  };
}

/** Runs the statements in one repeatable-read transaction, so each database is read at one instant. */
async function query(url: string, statements: readonly string[]): Promise<unknown[][]> {
  const client = new Client({ connectionString: url });
  // A server restart mid-read fails the pending query, which reports it; without a listener
  // the client's 'error' event would also end the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const results: unknown[][] = [];
    for (const sql of statements) results.push((await client.query(sql)).rows);
    await client.query('COMMIT');
    return results;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
