/**
 * The durable state of this replica's acceptor, and of its leader's rounds, in the replica's
 * own database (ACCEPTOR_DATABASE_URL). Paxos safety rests on it: a promise or an accepted
 * value is revealed only after it is committed here, and a restarted replica answers from
 * these rows exactly as before it stopped. Its own pool and migrations keep it apart from the
 * shared decision log, which is only the transactions' record for the API.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AcceptorState1764030000000 } from '../../../migrations/acceptor/1764030000000-acceptor-state';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { GroupCommitter } from '../../decision-log/group-commit';
import { AcceptorRecord, InstanceState } from '../../protocols/paxos-commit/acceptor';
import { LeaderRecord } from '../../protocols/paxos-commit/leader';
import { Ballot, Membership, Value } from '../../protocols/paxos-commit/messages';

export const ACCEPTOR_MIGRATIONS = [AcceptorState1764030000000];

interface InstanceRow {
  rm: string;
  max_bal_round: number;
  max_bal_replica: string;
  max_vbal_round: number | null;
  max_vbal_replica: string | null;
  max_val: Value | null;
}

@Injectable()
export class AcceptorStore implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AcceptorStore.name);
  private dataSource: DataSource | undefined;
  private committer: GroupCommitter | undefined;
  /** Whether this start created the database's identity, i.e. the acceptor has no past here. */
  fresh = false;
  private markOpen: (error?: Error) => void = () => undefined;
  /** Nest runs the module's init hooks concurrently; whoever needs the database waits for this. */
  readonly opened: Promise<void>;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.opened = new Promise<void>((resolve, reject) => {
      this.markOpen = (error) => (error ? reject(error) : resolve());
    });
    // A failed open is reported by onModuleInit; here it must not also count as unhandled.
    this.opened.catch(() => undefined);
  }

  async onModuleInit(): Promise<void> {
    try {
      await this.open();
      this.markOpen();
    } catch (error) {
      this.markOpen(error as Error);
      throw error;
    }
  }

  private async open(): Promise<void> {
    const paxos = this.config.paxosCommit;
    if (!paxos) return;
    const dataSource = new DataSource({
      type: 'postgres',
      url: paxos.acceptorDatabaseUrl,
      migrations: ACCEPTOR_MIGRATIONS,
      synchronize: false,
      migrationsRun: false,
      extra: { max: 10 },
    });
    await dataSource.initialize();
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    if (applied.length > 0) this.logger.log(`applied acceptor migrations: ${applied.map((m) => m.name).join(', ')}`);
    await this.claimIdentity(dataSource, this.config.coordinatorId);
    this.dataSource = dataSource;
    // Writes of concurrent transactions share one database transaction, as in the decision log.
    this.committer = new GroupCommitter(dataSource, this.config.groupCommitMaxBatch);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.dataSource?.destroy();
  }

  /** The acceptor's records for one transaction, as restoreAcceptor expects them. */
  async load(txnId: string): Promise<AcceptorRecord[]> {
    const db = this.db();
    const [txn] = await db.query<{ membership: Membership; leader: string | null }[]>(
      `SELECT membership, leader FROM acceptor_transactions WHERE txn_id = $1`,
      [txnId],
    );
    if (!txn) return [];
    const rows = await db.query<InstanceRow[]>(
      `SELECT rm, max_bal_round, max_bal_replica, max_vbal_round, max_vbal_replica, max_val FROM acceptor_instances WHERE txn_id = $1`,
      [txnId],
    );
    const instances: Record<string, InstanceState> = {};
    for (const row of rows) instances[row.rm] = toInstance(row);
    return [{ type: 'instances', membership: txn.membership, leader: txn.leader ?? undefined, instances }];
  }

  /** Makes one acceptor step's record durable; resolves only once it is committed. */
  persist(txnId: string, record: AcceptorRecord): Promise<void> {
    return this.commit(async (manager) => {
      await manager.query(
        `INSERT INTO acceptor_transactions (txn_id, membership, leader) VALUES ($1, $2::jsonb, $3)
         ON CONFLICT (txn_id) DO UPDATE SET leader = COALESCE(EXCLUDED.leader, acceptor_transactions.leader), updated_at = now()`,
        [txnId, JSON.stringify(record.membership), record.leader ?? null],
      );
      for (const [rm, instance] of Object.entries(record.instances)) {
        await manager.query(
          `INSERT INTO acceptor_instances (txn_id, rm, max_bal_round, max_bal_replica, max_vbal_round, max_vbal_replica, max_val)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (txn_id, rm) DO UPDATE SET max_bal_round = $3, max_bal_replica = $4, max_vbal_round = $5,
             max_vbal_replica = $6, max_val = $7, updated_at = now()`,
          [txnId, rm, instance.maxBal.round, instance.maxBal.replica, instance.maxVBal?.round ?? null, instance.maxVBal?.replica ?? null, instance.maxVal ?? null],
        );
      }
    });
  }

  /** The leader's records for one transaction, as restoreLeader expects them. */
  async leaderRecords(txnId: string): Promise<LeaderRecord[]> {
    const rows = await this.db().query<{ round: number }[]>(`SELECT round FROM leader_rounds WHERE txn_id = $1`, [txnId]);
    return rows.map((r) => ({ type: 'round', round: r.round }));
  }

  /** Makes a leader round durable before any phase 1a of it leaves; a round never goes down. */
  persistRound(txnId: string, round: number): Promise<void> {
    return this.commit(async (manager) => {
      await manager.query(
        `INSERT INTO leader_rounds (txn_id, round) VALUES ($1, $2)
         ON CONFLICT (txn_id) DO UPDATE SET round = GREATEST(leader_rounds.round, EXCLUDED.round), updated_at = now()`,
        [txnId, round],
      );
    });
  }

  private commit(work: Parameters<GroupCommitter['submit']>[0]): Promise<void> {
    if (!this.committer) throw new Error('the acceptor database is not open');
    return this.committer.submit(work).then(() => undefined);
  }

  private db(): DataSource {
    if (!this.dataSource) throw new Error('the acceptor database is not open');
    return this.dataSource;
  }

  /** Refuses to start on a database that belongs to another acceptor (a swapped URL would merge two acceptors). */
  private async claimIdentity(dataSource: DataSource, acceptor: string): Promise<void> {
    const inserted: unknown[] = await dataSource.query(`INSERT INTO acceptor_identity (acceptor) VALUES ($1) ON CONFLICT (singleton) DO NOTHING RETURNING acceptor`, [acceptor]);
    this.fresh = inserted.length > 0;
    const [row] = await dataSource.query<{ acceptor: string }[]>(`SELECT acceptor FROM acceptor_identity`);
    if (row.acceptor !== acceptor) {
      throw new Error(`ACCEPTOR_DATABASE_URL holds the state of acceptor ${row.acceptor}, not of ${acceptor}: every acceptor needs its own database`);
    }
  }
}

function toInstance(row: InstanceRow): InstanceState {
  const maxBal: Ballot = { round: row.max_bal_round, replica: row.max_bal_replica };
  if (row.max_vbal_round === null || row.max_val === null) return { maxBal };
  return { maxBal, maxVBal: { round: row.max_vbal_round, replica: row.max_vbal_replica ?? '' }, maxVal: row.max_val };
}
