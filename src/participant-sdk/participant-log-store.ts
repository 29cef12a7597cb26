/**
 * What the participant's durable logs (two-phase, three-phase, Paxos Commit) have in common:
 * one row per transaction in the service's own database, locked for the length of one
 * protocol step so that the service's handler writes and the row change commit together.
 * The protocols differ only in their columns, so each log describes its table and this
 * store runs the transaction, the placeholder row and the commit-only-when-durable rule.
 */
import type { Pool, PoolClient, QueryResultRow } from 'pg';

/** Every log row names its transaction and carries `working` until a step makes it durable. */
export interface ParticipantLogRow {
  readonly txnId: string;
  readonly rmState: string;
}

/** A step may change any column but the key, and only into a durable state. */
export type LogRowChangeOf<Row extends ParticipantLogRow> = Partial<Omit<Row, 'txnId' | 'rmState'>> & {
  readonly rmState?: Exclude<Row['rmState'], 'working'>;
};

/** A transaction's row, locked for the duration of one protocol step. */
export interface LockedRowOf<Row extends ParticipantLogRow> {
  readonly row: Row;
  /** The service's view of the same database transaction; handlers get it as `ctx.db`. */
  readonly client: PoolClient;
  update(change: LogRowChangeOf<Row>): Promise<void>;
}

/** The part of every log port that a driver runs its steps through. */
export interface RowLockingLog<Row extends ParticipantLogRow> {
  /**
   * Runs `work` with the transaction's row locked (a `working` row if there was none) and
   * commits if the row was changed into a durable state, otherwise rolls back. A throw
   * from `work` rolls everything back and is rethrown.
   */
  withLockedRow<T>(txnId: string, work: (locked: LockedRowOf<Row>) => Promise<T>): Promise<T>;
}

/** What one protocol's log table looks like; every table is keyed by (participant, txn_id). */
export interface LogTable<Row extends ParticipantLogRow, Raw extends QueryResultRow> {
  readonly name: string;
  /** Distinct per table, so that services starting at once never race on CREATE TABLE. */
  readonly schemaLockKey: number;
  readonly schemaSql: string;
  /** The columns `toRow` reads. */
  readonly columns: string;
  /** The condition of a row whose participant voted yes and has not learned the outcome. */
  readonly inDoubt: string;
  /** The SET list of a row write, using $3 onwards; $1 and $2 are the key. */
  readonly assignments: string;
  /** The values of `assignments` for a row, from $3 on. */
  values(row: Row): unknown[];
  toRow(raw: Raw): Row;
}

/** A Postgres log of one protocol; a subclass names its table and adds its own `findInDoubt`. */
export abstract class ParticipantLogStore<Row extends ParticipantLogRow, Raw extends QueryResultRow> implements RowLockingLog<Row> {
  protected abstract readonly table: LogTable<Row, Raw>;

  constructor(
    private readonly pool: Pool,
    private readonly participant: string,
  ) {}

  async ensureSchema(): Promise<void> {
    await this.inTransaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [this.table.schemaLockKey]);
      await client.query(this.table.schemaSql);
    });
  }

  withLockedRow<T>(txnId: string, work: (locked: LockedRowOf<Row>) => Promise<T>): Promise<T> {
    const { name, columns, assignments } = this.table;
    const key = [this.participant, txnId];
    return this.inTransaction(async (client, finish) => {
      // The placeholder gives a transaction never seen before a row to lock; it is rolled
      // back unless the step moves it into a durable state.
      await client.query(`INSERT INTO ${name} (participant, txn_id, state) VALUES ($1, $2, 'working') ON CONFLICT DO NOTHING`, key);
      const selected = await client.query<Raw>(`SELECT ${columns} FROM ${name} WHERE participant = $1 AND txn_id = $2 FOR UPDATE`, key);
      let current = this.table.toRow(selected.rows[0]);
      let changed = false;
      const locked: LockedRowOf<Row> = {
        get row() {
          return current;
        },
        client,
        update: async (change) => {
          current = { ...current, ...change };
          changed = true;
          await client.query(`UPDATE ${name} SET ${assignments}, updated_at = now() WHERE participant = $1 AND txn_id = $2`, [
            ...key,
            ...this.table.values(current),
          ]);
        },
      };
      const result = await work(locked);
      finish(changed && current.rmState !== 'working');
      return result;
    });
  }

  /** For a protocol that can recover an in-doubt transaction from its id alone; oldest first. */
  protected async inDoubtTxnIds(): Promise<string[]> {
    const rows = await this.selectInDoubt<{ txn_id: string }>('txn_id');
    return rows.map((row) => row.txn_id);
  }

  /** In-doubt rows, oldest first, for a protocol that needs more than the id to recover. */
  protected async inDoubtRows(): Promise<Row[]> {
    const rows = await this.selectInDoubt<Raw>(this.table.columns);
    return rows.map((raw) => this.table.toRow(raw));
  }

  private async selectInDoubt<R extends QueryResultRow>(columns: string): Promise<R[]> {
    const { name, inDoubt } = this.table;
    const result = await this.pool.query<R>(`SELECT ${columns} FROM ${name} WHERE participant = $1 AND ${inDoubt} ORDER BY created_at`, [this.participant]);
    return result.rows;
  }

  /** BEGIN ... COMMIT (or ROLLBACK when `finish(false)` was called or `work` threw). */
  private async inTransaction<T>(work: (client: PoolClient, finish: (commit: boolean) => void) => Promise<T>): Promise<T> {
    return withCheckedOutClient(this.pool, async (client) => {
      let commit = true;
      try {
        await client.query('BEGIN');
        const result = await work(client, (yes) => (commit = yes));
        await client.query(commit ? 'COMMIT' : 'ROLLBACK');
        return result;
      } catch (error) {
        // A connection that cannot even roll back is broken; the error marks it for discarding.
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          throw new BrokenConnectionError(error, rollbackError);
        });
        throw error;
      }
    });
  }
}

/** The step's own failure, carrying the rollback failure that shows the connection is gone. */
class BrokenConnectionError extends Error {
  constructor(
    readonly original: unknown,
    readonly connectionError: Error,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/**
 * Runs `work` on a client checked out of `pool`. While checked out, a client is outside the
 * pool's own 'error' listener: a server restart then emits 'error' on the client itself,
 * and with no listener Node ends the process. So it listens for the time it is out, and a
 * client that errored, or whose rollback failed, goes back with the error so that the pool
 * discards it instead of handing a dead connection to the next step.
 */
export async function withCheckedOutClient<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken ??= error;
  };
  client.on('error', onError);
  try {
    return await work(client);
  } catch (error) {
    if (error instanceof BrokenConnectionError) {
      broken ??= error.connectionError;
      throw error.original;
    }
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
