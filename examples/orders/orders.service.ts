/**
 * Orders: records the order as pending in phase one, confirms it on commit and cancels it
 * on abort. The payload is kept as the order's details, so a checkout that sends
 * `{ orderId, sku, qty, account, amount }` lets the conservation check compare orders with
 * stock sold and money captured.
 */
import { Client } from 'pg';
import { PrepareVerdict, TransactionContext } from '../../src/participant-sdk';
import { Checked, identifierField, invalid, isRecord } from '../common/payload';
import { ServiceDefinition } from '../common/run-service';
import { Env } from '../common/service-env';

export interface OrderPayload {
  readonly orderId: string;
  readonly details: Record<string, unknown>;
}

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS orders (
  order_id   text        PRIMARY KEY,
  txn_id     text        NOT NULL UNIQUE,
  state      text        NOT NULL CHECK (state IN ('pending', 'confirmed', 'cancelled')),
  details    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;

export function checkOrderPayload(payload: unknown): Checked<OrderPayload> {
  if (!isRecord(payload)) return invalid('expected an object with orderId');
  const orderId = identifierField(payload, 'orderId');
  if (orderId === undefined) return invalid('orderId must be a non-empty string');
  const { orderId: _orderId, ...details } = payload;
  return { ok: true, value: { orderId, details } };
}

export function ordersService(_env: Env): ServiceDefinition<unknown> {
  return {
    async setUpDatabase(db: Client): Promise<string> {
      await db.query(SCHEMA_SQL);
      const { rows } = await db.query<{ count: string }>('SELECT count(*) FROM orders');
      return `orders table ready (${rows[0].count} order(s))`;
    },
    handlers: { prepare, commit, abort },
  };
}

async function prepare(ctx: TransactionContext): Promise<PrepareVerdict> {
  const checked = checkOrderPayload(ctx.payload);
  if (!checked.ok) return { vote: 'NO', reason: checked.reason };
  const { orderId, details } = checked.value;
  const inserted = await ctx.db.query(
    `INSERT INTO orders (order_id, txn_id, state, details) VALUES ($1, $2, 'pending', $3::jsonb) ON CONFLICT DO NOTHING RETURNING order_id`,
    [orderId, ctx.txnId, JSON.stringify(details)],
  );
  if (inserted.rowCount === 1) return { vote: 'YES' };
  const { rows } = await ctx.db.query<{ txn_id: string }>('SELECT txn_id FROM orders WHERE order_id = $1', [orderId]);
  if (rows.length === 0) return { vote: 'NO', reason: 'this transaction already recorded another order' };
  if (rows[0].txn_id === ctx.txnId) return { vote: 'YES' };
  return { vote: 'NO', reason: `order ${orderId} already exists` };
}

async function commit(ctx: TransactionContext): Promise<void> {
  await ctx.db.query(`UPDATE orders SET state = 'confirmed', updated_at = now() WHERE txn_id = $1 AND state = 'pending'`, [ctx.txnId]);
}

async function abort(ctx: TransactionContext): Promise<void> {
  await ctx.db.query(`UPDATE orders SET state = 'cancelled', updated_at = now() WHERE txn_id = $1 AND state = 'pending'`, [ctx.txnId]);
}
