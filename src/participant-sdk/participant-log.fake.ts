/**
 * A test double of the participant logs for the driver specs, which test the durability rule
 * without Postgres. It keeps rows in memory under the same contract as ParticipantLogStore (a
 * row is kept only once a step made it durable, a throw keeps nothing) and records what a
 * step did in `events`, next to the handler and send events, so that a spec can assert their
 * order. A spec names its protocol's in-doubt answer, which is ids for some logs and rows for
 * others, and can make row writes fail as a database that went away would.
 */
import type { PoolClient } from 'pg';
import { LockedRowOf, ParticipantLogRow, RowLockingLog } from './participant-log-store';

export interface InMemoryParticipantLogOptions<Row extends ParticipantLogRow, InDoubt> {
  /** The `working` row of a transaction this log has not seen yet. */
  fresh(txnId: string): Row;
  /** What `findInDoubt` answers, given the durable rows oldest first as the Postgres logs order them. */
  inDoubt(rows: readonly Row[]): InDoubt[];
}

export class InMemoryParticipantLog<Row extends ParticipantLogRow, InDoubt> implements RowLockingLog<Row> {
  /** Durable rows by transaction id, in the order they were first made durable. */
  readonly rows = new Map<string, Row>();
  private writeFailures = 0;

  constructor(
    private readonly events: string[],
    private readonly options: InMemoryParticipantLogOptions<Row, InDoubt>,
  ) {}

  async withLockedRow<T>(txnId: string, work: (locked: LockedRowOf<Row>) => Promise<T>): Promise<T> {
    let current = this.rows.get(txnId) ?? this.options.fresh(txnId);
    const client = {
      query: async (sql: string) => {
        this.events.push(`sql ${sql}`);
        return { rows: [] };
      },
    } as unknown as PoolClient;
    this.events.push('begin');
    try {
      const result = await work({
        get row() {
          return current;
        },
        client,
        update: async (change) => {
          if (this.writeFailures > 0) {
            this.writeFailures--;
            this.events.push('update failed');
            throw new Error('connection terminated unexpectedly');
          }
          current = { ...current, ...change };
          this.events.push(`update ${current.rmState}`);
        },
      });
      if (current.rmState !== 'working') this.rows.set(txnId, current);
      this.events.push('commit');
      return result;
    } catch (error) {
      this.events.push('rollback');
      throw error;
    }
  }

  /** The next `count` row writes throw, and roll their step back. */
  failWrites(count: number): void {
    this.writeFailures = count;
  }

  async findInDoubt(): Promise<InDoubt[]> {
    return this.options.inDoubt([...this.rows.values()]);
  }
}
