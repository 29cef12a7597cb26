/**
 * Inventory: reserves stock in phase one, turns the reservation into a sale on commit and
 * returns it to the shelf on abort. Every handler runs inside the SDK's database
 * transaction, so a reservation and the participant log row change together.
 */
import { Client } from 'pg';
import { PrepareVerdict, TransactionContext } from '../../src/participant-sdk';
import { Checked, identifierField, invalid, isRecord, positiveIntegerField } from '../common/payload';
import { ServiceDefinition } from '../common/run-service';
import { Env, seedFrom } from '../common/service-env';

export const DEFAULT_INVENTORY_SEED = 'sku-1:100,sku-2:50';

export interface StockPayload {
  readonly sku: string;
  readonly qty: number;
}

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS stock (
  sku       text    PRIMARY KEY,
  available integer NOT NULL CHECK (available >= 0),
  reserved  integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  sold      integer NOT NULL DEFAULT 0 CHECK (sold >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
  txn_id     text        PRIMARY KEY,
  sku        text        NOT NULL REFERENCES stock (sku),
  qty        integer     NOT NULL CHECK (qty > 0),
  state      text        NOT NULL CHECK (state IN ('held', 'committed', 'released')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;

export function checkStockPayload(payload: unknown): Checked<StockPayload> {
  if (!isRecord(payload)) return invalid('expected an object with sku and qty');
  const sku = identifierField(payload, 'sku');
  const qty = positiveIntegerField(payload, 'qty');
  if (sku === undefined) return invalid('sku must be a non-empty string');
  if (qty === undefined) return invalid('qty must be a positive integer');
  return { ok: true, value: { sku, qty } };
}

export function inventoryService(env: Env): ServiceDefinition<unknown> {
  const seed = seedFrom(env, 'INVENTORY_SEED', DEFAULT_INVENTORY_SEED);
  return {
    async setUpDatabase(db: Client): Promise<string> {
      await db.query(SCHEMA_SQL);
      const { rows } = await db.query<{ count: string }>('SELECT count(*) FROM stock');
      if (Number(rows[0].count) > 0) return `stock has ${rows[0].count} sku(s); not seeding`;
      for (const [sku, available] of Object.entries(seed)) {
        await db.query('INSERT INTO stock (sku, available) VALUES ($1, $2) ON CONFLICT DO NOTHING', [sku, available]);
      }
      return `seeded stock: ${Object.entries(seed).map(([sku, qty]) => `${sku}=${qty}`).join(', ') || 'nothing'}`;
    },
    handlers: { prepare, commit, abort },
  };
}

async function prepare(ctx: TransactionContext): Promise<PrepareVerdict> {
  const checked = checkStockPayload(ctx.payload);
  if (!checked.ok) return { vote: 'NO', reason: checked.reason };
  const { sku, qty } = checked.value;
  const { rows } = await ctx.db.query<{ available: number }>('SELECT available FROM stock WHERE sku = $1 FOR UPDATE', [sku]);
  if (rows.length === 0) return { vote: 'NO', reason: `unknown sku ${sku}` };
  if (rows[0].available < qty) return { vote: 'NO', reason: 'insufficient stock' };
  await ctx.db.query('UPDATE stock SET available = available - $2, reserved = reserved + $2 WHERE sku = $1', [sku, qty]);
  await ctx.db.query(`INSERT INTO reservations (txn_id, sku, qty, state) VALUES ($1, $2, $3, 'held')`, [ctx.txnId, sku, qty]);
  return { vote: 'YES' };
}

async function commit(ctx: TransactionContext): Promise<void> {
  const held = await settle(ctx, 'committed');
  if (held) await ctx.db.query('UPDATE stock SET reserved = reserved - $2, sold = sold + $2 WHERE sku = $1', [held.sku, held.qty]);
}

async function abort(ctx: TransactionContext): Promise<void> {
  const held = await settle(ctx, 'released');
  if (held) await ctx.db.query('UPDATE stock SET reserved = reserved - $2, available = available + $2 WHERE sku = $1', [held.sku, held.qty]);
}

/** Moves a held reservation to its final state; returns it only if it was still held. */
async function settle(ctx: TransactionContext, state: 'committed' | 'released'): Promise<StockPayload | undefined> {
  const { rows } = await ctx.db.query<StockPayload>(
    `UPDATE reservations SET state = $2, updated_at = now() WHERE txn_id = $1 AND state = 'held' RETURNING sku, qty`,
    [ctx.txnId, state],
  );
  return rows[0];
}
