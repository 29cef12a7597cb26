import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { CreateResult, DecisionLogRepository, NewTransaction, OutcomeCount, TransactionFilter, UnfinishedSummary } from './decision-log.repository';
import { GroupCommitter } from './group-commit';
import { TransactionEntity, TransactionState } from './transaction.entity';

@Injectable()
export class TypeOrmDecisionLogRepository extends DecisionLogRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly committer: GroupCommitter,
  ) {
    super();
  }

  async createTransaction(txn: NewTransaction): Promise<CreateResult> {
    const inserted = await this.committer.submit(async (manager) => {
      const rows: { id: string }[] = await manager.query(
        `INSERT INTO transactions (id, protocol, state, idempotency_key, request_hash, timeout_ms, owner_id, trace_context, partition, lease_expires_at)
         VALUES ($1, $2, 'PREPARING', $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9 / 1000.0))
         ON CONFLICT DO NOTHING RETURNING id`,
        [txn.id, txn.protocol, txn.idempotencyKey, txn.requestHash, txn.timeoutMs, txn.ownerId, txn.traceContext, txn.partition, txn.leaseMs],
      );
      if (rows.length === 0) {
        // The id is fresh, so a row holding it is this very write, committed by an attempt
        // whose acknowledgement the connection lost; its participants went in with it.
        const same: unknown[] = await manager.query(`SELECT 1 FROM transactions WHERE id = $1`, [txn.id]);
        return same.length > 0;
      }
      await this.insertParticipants(manager, txn);
      return true;
    });
    if (inserted) return { created: true, transaction: await this.mustFind(txn.id) };
    const existing = await this.dataSource.getRepository(TransactionEntity).findOne({
      where: { idempotencyKey: txn.idempotencyKey! },
      relations: { participants: true },
    });
    if (!existing) throw new Error(`idempotency key ${txn.idempotencyKey} conflicted but no transaction holds it`);
    return { created: false, transaction: sortParticipants(existing) };
  }

  appendVote(txnId: string, rm: string, vote: 'YES' | 'NO', reason: string | undefined): Promise<void> {
    return this.committer.submit(async (manager) => {
      await manager.query(
        `UPDATE transaction_participants SET vote = $3, vote_reason = $4, voted_at = now()
         WHERE txn_id = $1 AND name = $2 AND vote IS NULL`,
        [txnId, rm, vote, reason ?? null],
      );
    });
  }

  appendDecision(txnId: string, decision: 'COMMIT' | 'ABORT', reason: string): Promise<'COMMIT' | 'ABORT'> {
    return this.committer.submit(async (manager) => {
      await manager.query(
        `UPDATE transactions SET decision = $2, decision_reason = $3, decided_at = now(),
           state = CASE WHEN $2 = 'COMMIT' THEN 'COMMITTED' ELSE 'ABORTED' END
         WHERE id = $1 AND decision IS NULL`,
        [txnId, decision, reason],
      );
      const rows: { decision: 'COMMIT' | 'ABORT' }[] = await manager.query(`SELECT decision FROM transactions WHERE id = $1`, [txnId]);
      return rows[0].decision;
    });
  }

  appendAck(txnId: string, rm: string): Promise<void> {
    return this.committer.submit(async (manager) => {
      await manager.query(
        `UPDATE transaction_participants SET acked_at = now() WHERE txn_id = $1 AND name = $2 AND acked_at IS NULL`,
        [txnId, rm],
      );
    });
  }

  appendPreCommit(txnId: string, epoch: number): Promise<boolean> {
    return this.committer.submit(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE transactions SET state = 'PRECOMMITTED', precommitted_at = COALESCE(precommitted_at, now())
         WHERE id = $1 AND epoch = $2 AND decision IS NULL`,
        [txnId, epoch],
      );
      return result[1] > 0;
    });
  }

  appendPreCommitAck(txnId: string, rm: string): Promise<void> {
    return this.committer.submit(async (manager) => {
      await manager.query(
        `UPDATE transaction_participants SET precommit_acked_at = now() WHERE txn_id = $1 AND name = $2 AND precommit_acked_at IS NULL`,
        [txnId, rm],
      );
    });
  }

  appendDecisionAtEpoch(txnId: string, epoch: number, decision: 'COMMIT' | 'ABORT', reason: string): Promise<'COMMIT' | 'ABORT' | null> {
    return this.committer.submit(async (manager) => {
      await manager.query(
        `UPDATE transactions SET decision = $3, decision_reason = $4, decided_at = now(),
           state = CASE WHEN $3 = 'COMMIT' THEN 'COMMITTED' ELSE 'ABORTED' END
         WHERE id = $1 AND epoch = $2 AND decision IS NULL`,
        [txnId, epoch, decision, reason],
      );
      const rows: { decision: 'COMMIT' | 'ABORT' | null }[] = await manager.query(`SELECT decision FROM transactions WHERE id = $1`, [txnId]);
      return rows[0]?.decision ?? null;
    });
  }

  markComplete(txnId: string): Promise<void> {
    return this.committer.submit(async (manager) => {
      await manager.query(`UPDATE transactions SET completed_at = now() WHERE id = $1 AND completed_at IS NULL`, [txnId]);
    });
  }

  async findById(id: string): Promise<TransactionEntity | null> {
    const found = await this.dataSource.getRepository(TransactionEntity).findOne({ where: { id }, relations: { participants: true } });
    return found && sortParticipants(found);
  }

  async list(filter: TransactionFilter): Promise<TransactionEntity[]> {
    // Pick the page of transactions first, then load their participants: a LIMIT over the
    // joined rows would count participants, not transactions.
    const page = this.dataSource.getRepository(TransactionEntity).createQueryBuilder('t').select('t.id', 'id').orderBy('t.created_at', 'DESC').limit(filter.limit);
    if (filter.state) page.andWhere('t.state = :state', { state: filter.state });
    if (filter.protocol) page.andWhere('t.protocol = :protocol', { protocol: filter.protocol });
    const ids = (await page.getRawMany<{ id: string }>()).map((r) => r.id);
    if (ids.length === 0) return [];
    return this.dataSource
      .getRepository(TransactionEntity)
      .createQueryBuilder('t')
      .leftJoinAndSelect('t.participants', 'p')
      .where('t.id IN (:...ids)', { ids })
      .orderBy('t.created_at', 'DESC')
      .addOrderBy('p.position', 'ASC')
      .getMany();
  }

  async findUnfinished(limit?: number): Promise<TransactionEntity[]> {
    const query = this.dataSource
      .getRepository(TransactionEntity)
      .createQueryBuilder('t')
      .leftJoinAndSelect('t.participants', 'p')
      .where('t.completed_at IS NULL')
      // Transactions logged in one group commit share created_at; the id keeps pages stable.
      .orderBy('t.created_at', 'ASC')
      .addOrderBy('t.id', 'ASC')
      .addOrderBy('p.position', 'ASC');
    if (limit === undefined) return query.getMany();
    // As in `list`: the limit counts transactions, so pick their ids before joining participants.
    const ids = await this.dataSource.query(
      `SELECT id FROM transactions WHERE completed_at IS NULL ORDER BY created_at ASC, id ASC LIMIT $1`,
      [limit],
    ).then((rows: { id: string }[]) => rows.map((r) => r.id));
    if (ids.length === 0) return [];
    return query.andWhere('t.id IN (:...ids)', { ids }).getMany();
  }

  async unfinishedSummary(): Promise<UnfinishedSummary[]> {
    const rows: { protocol: string; count: string; oldest_age_ms: string }[] = await this.dataSource.query(
      `SELECT protocol, count(*) AS count, EXTRACT(EPOCH FROM now() - min(created_at)) * 1000 AS oldest_age_ms
       FROM transactions WHERE completed_at IS NULL GROUP BY protocol`,
    );
    return rows.map((r) => ({ protocol: r.protocol, count: Number(r.count), oldestAgeMs: Math.max(0, Math.round(Number(r.oldest_age_ms))) }));
  }

  async countByProtocolAndState(): Promise<OutcomeCount[]> {
    const rows: { protocol: string; state: TransactionState; count: string }[] = await this.dataSource.query(
      `SELECT protocol, state, count(*) AS count FROM transactions GROUP BY protocol, state ORDER BY protocol, state`,
    );
    return rows.map((r) => ({ protocol: r.protocol, state: r.state, count: Number(r.count) }));
  }

  async renewLeases(ownerId: string, partitions: readonly number[], leaseMs: number): Promise<number> {
    if (partitions.length === 0) return 0;
    const result: [unknown[], number] = await this.dataSource.query(
      `UPDATE transactions SET lease_expires_at = now() + make_interval(secs => $3 / 1000.0)
       WHERE owner_id = $1 AND completed_at IS NULL AND partition = ANY($2::int[])`,
      [ownerId, partitions, leaseMs],
    );
    return result[1];
  }

  async findUnfinishedIn(partitions: readonly number[]): Promise<TransactionEntity[]> {
    if (partitions.length === 0) return [];
    return this.dataSource
      .getRepository(TransactionEntity)
      .createQueryBuilder('t')
      .leftJoinAndSelect('t.participants', 'p')
      .where('t.completed_at IS NULL')
      .andWhere('t.partition IN (:...partitions)', { partitions })
      .orderBy('t.created_at', 'ASC')
      .addOrderBy('p.position', 'ASC')
      .getMany();
  }

  async now(): Promise<number> {
    const [row]: { now: Date }[] = await this.dataSource.query('SELECT now() AS now');
    return new Date(row.now).getTime();
  }

  async takeOver(txnId: string, from: { ownerId: string; epoch: number }, to: string, leaseMs: number): Promise<TransactionEntity | null> {
    const rows: unknown[] = await this.committer.submit((manager) =>
      manager.query(
        `UPDATE transactions SET owner_id = $4, epoch = epoch + 1, lease_expires_at = now() + make_interval(secs => $5 / 1000.0)
         WHERE id = $1 AND owner_id = $2 AND epoch = $3 AND completed_at IS NULL AND (lease_expires_at < now() OR owner_id = $4)
         RETURNING id`,
        [txnId, from.ownerId, from.epoch, to, leaseMs],
      ).then((result: [unknown[], number]) => result[0]),
    );
    return rows.length === 0 ? null : this.findById(txnId);
  }

  private async insertParticipants(manager: EntityManager, txn: NewTransaction): Promise<void> {
    const values: unknown[] = [];
    const tuples = txn.participants.map((p, i) => {
      values.push(txn.id, p.name, i, JSON.stringify(p.payload ?? null));
      const base = i * 4;
      return `($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}::jsonb)`;
    });
    await manager.query(`INSERT INTO transaction_participants (txn_id, name, position, payload) VALUES ${tuples.join(', ')}`, values);
  }

  private async mustFind(id: string): Promise<TransactionEntity> {
    const found = await this.findById(id);
    if (!found) throw new Error(`transaction ${id} vanished after it was logged`);
    return found;
  }
}

function sortParticipants(txn: TransactionEntity): TransactionEntity {
  txn.participants?.sort((a, b) => a.position - b.position);
  return txn;
}
