/**
 * Payments: holds funds on the customer's account in phase one, captures them into the
 * merchant account on commit and releases the hold on abort. Amounts are integers in the
 * smallest currency unit. Every handler runs inside the SDK's database transaction.
 */
import { Client } from 'pg';
import { PrepareVerdict, TransactionContext } from '../../src/participant-sdk';
import { Checked, identifierField, invalid, isRecord, positiveIntegerField } from '../common/payload';
import { ServiceDefinition } from '../common/run-service';
import { Env, ServiceConfigError, seedFrom } from '../common/service-env';

export const DEFAULT_PAYMENTS_SEED = 'acct-1:10000,acct-2:500';
export const DEFAULT_MERCHANT_ACCOUNT = 'merchant';

export interface PaymentPayload {
  readonly account: string;
  readonly amount: number;
}

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS accounts (
  id      text   PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0),
  held    bigint NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= balance)
);
CREATE TABLE IF NOT EXISTS holds (
  txn_id     text        PRIMARY KEY,
  account    text        NOT NULL REFERENCES accounts (id),
  amount     bigint      NOT NULL CHECK (amount > 0),
  state      text        NOT NULL CHECK (state IN ('held', 'captured', 'released')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;

export function checkPaymentPayload(payload: unknown): Checked<PaymentPayload> {
  if (!isRecord(payload)) return invalid('expected an object with account and amount');
  const account = identifierField(payload, 'account');
  const amount = positiveIntegerField(payload, 'amount');
  if (account === undefined) return invalid('account must be a non-empty string');
  if (amount === undefined) return invalid('amount must be a positive integer');
  return { ok: true, value: { account, amount } };
}

export function paymentsService(env: Env): ServiceDefinition<unknown> {
  const seed = seedFrom(env, 'PAYMENTS_SEED', DEFAULT_PAYMENTS_SEED);
  const merchant = env.MERCHANT_ACCOUNT || DEFAULT_MERCHANT_ACCOUNT;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(merchant)) throw new ServiceConfigError('MERCHANT_ACCOUNT', `must be letters, digits, '.', '_' or '-', got ${JSON.stringify(merchant)}`);

  async function prepare(ctx: TransactionContext): Promise<PrepareVerdict> {
    const checked = checkPaymentPayload(ctx.payload);
    if (!checked.ok) return { vote: 'NO', reason: checked.reason };
    const { account, amount } = checked.value;
    if (account === merchant) return { vote: 'NO', reason: 'the merchant account cannot pay itself' };
    const { rows } = await ctx.db.query<{ enough: boolean }>('SELECT balance - held >= $2 AS enough FROM accounts WHERE id = $1 FOR UPDATE', [account, amount]);
    if (rows.length === 0) return { vote: 'NO', reason: `unknown account ${account}` };
    if (!rows[0].enough) return { vote: 'NO', reason: 'insufficient funds' };
    await ctx.db.query('UPDATE accounts SET held = held + $2 WHERE id = $1', [account, amount]);
    await ctx.db.query(`INSERT INTO holds (txn_id, account, amount, state) VALUES ($1, $2, $3, 'held')`, [ctx.txnId, account, amount]);
    return { vote: 'YES' };
  }

  async function commit(ctx: TransactionContext): Promise<void> {
    const hold = await settle(ctx, 'captured');
    if (!hold) return;
    // Customer first, merchant second: every transaction locks in this order, so captures never deadlock.
    await ctx.db.query('UPDATE accounts SET balance = balance - $2, held = held - $2 WHERE id = $1', [hold.account, hold.amount]);
    await ctx.db.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [merchant, hold.amount]);
  }

  async function abort(ctx: TransactionContext): Promise<void> {
    const hold = await settle(ctx, 'released');
    if (hold) await ctx.db.query('UPDATE accounts SET held = held - $2 WHERE id = $1', [hold.account, hold.amount]);
  }

  return {
    async setUpDatabase(db: Client): Promise<string> {
      await db.query(SCHEMA_SQL);
      const { rows } = await db.query<{ count: string }>('SELECT count(*) FROM accounts');
      const empty = Number(rows[0].count) === 0;
      if (empty) {
        for (const [id, balance] of Object.entries(seed)) {
          await db.query('INSERT INTO accounts (id, balance) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, balance]);
        }
      }
      await db.query('INSERT INTO accounts (id, balance) VALUES ($1, 0) ON CONFLICT DO NOTHING', [merchant]);
      if (!empty) return `accounts has ${rows[0].count} account(s); not seeding`;
      return `seeded accounts: ${Object.entries(seed).map(([id, balance]) => `${id}=${balance}`).join(', ') || 'nothing'}; merchant account ${merchant}`;
    },
    handlers: { prepare, commit, abort },
  };
}

/** Moves a hold still `held` to its final state and returns it; undefined if it was not held. */
async function settle(ctx: TransactionContext, state: 'captured' | 'released'): Promise<PaymentPayload | undefined> {
  const { rows } = await ctx.db.query<{ account: string; amount: string }>(
    `UPDATE holds SET state = $2, updated_at = now() WHERE txn_id = $1 AND state = 'held' RETURNING account, amount`,
    [ctx.txnId, state],
  );
  return rows[0] ? { account: rows[0].account, amount: Number(rows[0].amount) } : undefined;
}
