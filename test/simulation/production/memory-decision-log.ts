/**
 * The decision log as the replicas share it (one Postgres), in memory, with the semantics of
 * src/decision-log/typeorm-decision-log.repository.ts: votes and acks are written once, an
 * earlier decision wins, leases and epochs fence takeovers. Timestamps come from Date.now,
 * which the simulator fakes. Reads return copies, so no replica can change a row by holding
 * on to an entity. `onChange` lets the simulator watch every applied write.
 */
import { CreateResult, DecisionLogRepository, NewTransaction, OutcomeCount, TransactionFilter, UnfinishedSummary } from '../../../src/decision-log/decision-log.repository';
import { TransactionParticipantEntity } from '../../../src/decision-log/transaction-participant.entity';
import { TransactionEntity } from '../../../src/decision-log/transaction.entity';

type Decision = 'COMMIT' | 'ABORT';
type Row = Omit<TransactionEntity, 'participants'> & { participants: Omit<TransactionParticipantEntity, 'transaction'>[] };

export type LogChange = { readonly kind: 'created' | 'decided' | 'completed' | 'other'; readonly txnId: string };

export class MemoryDecisionLog extends DecisionLogRepository {
  private readonly rows = new Map<string, Row>();
  private readonly byKey = new Map<string, string>();
  onChange: (change: LogChange) => void = () => undefined;

  ids(): string[] {
    return [...this.rows.keys()];
  }

  /** A copy of the row, for the simulator's checks. */
  peek(txnId: string): TransactionEntity | null {
    const row = this.rows.get(txnId);
    return row ? copy(row) : null;
  }

  async createTransaction(txn: NewTransaction): Promise<CreateResult> {
    const existing = txn.idempotencyKey === null ? undefined : this.byKey.get(txn.idempotencyKey);
    if (existing) return { created: false, transaction: copy(this.rows.get(existing)!) };
    const now = new Date();
    const row: Row = {
      id: txn.id,
      protocol: txn.protocol,
      state: 'PREPARING',
      decision: null,
      decisionReason: null,
      idempotencyKey: txn.idempotencyKey,
      requestHash: txn.requestHash,
      timeoutMs: txn.timeoutMs,
      ownerId: txn.ownerId,
      epoch: 1,
      partition: txn.partition,
      leaseExpiresAt: new Date(now.getTime() + txn.leaseMs),
      traceContext: txn.traceContext,
      createdAt: now,
      precommittedAt: null,
      decidedAt: null,
      completedAt: null,
      participants: txn.participants.map((p, position) => ({
        txnId: txn.id,
        name: p.name,
        position,
        payload: p.payload ?? null,
        vote: null,
        voteReason: null,
        votedAt: null,
        precommitAckedAt: null,
        ackedAt: null,
      })),
    };
    this.rows.set(txn.id, row);
    if (txn.idempotencyKey !== null) this.byKey.set(txn.idempotencyKey, txn.id);
    this.onChange({ kind: 'created', txnId: txn.id });
    return { created: true, transaction: copy(row) };
  }

  async appendVote(txnId: string, rm: string, vote: 'YES' | 'NO', reason: string | undefined): Promise<void> {
    const p = this.participant(txnId, rm);
    if (!p || p.vote !== null) return;
    Object.assign(p, { vote, voteReason: reason ?? null, votedAt: new Date() });
    this.onChange({ kind: 'other', txnId });
  }

  async appendDecision(txnId: string, decision: Decision, reason: string): Promise<Decision> {
    const row = this.mustGet(txnId);
    if (row.decision === null) this.decide(row, decision, reason);
    return row.decision!;
  }

  async appendAck(txnId: string, rm: string): Promise<void> {
    const p = this.participant(txnId, rm);
    if (!p || p.ackedAt !== null) return;
    p.ackedAt = new Date();
    this.onChange({ kind: 'other', txnId });
  }

  async appendPreCommit(txnId: string, epoch: number): Promise<boolean> {
    const row = this.rows.get(txnId);
    if (!row || row.epoch !== epoch || row.decision !== null) return false;
    row.state = 'PRECOMMITTED';
    row.precommittedAt ??= new Date();
    this.onChange({ kind: 'other', txnId });
    return true;
  }

  async appendPreCommitAck(txnId: string, rm: string): Promise<void> {
    const p = this.participant(txnId, rm);
    if (p && p.precommitAckedAt === null) p.precommitAckedAt = new Date();
  }

  async appendDecisionAtEpoch(txnId: string, epoch: number, decision: Decision, reason: string): Promise<Decision | null> {
    const row = this.rows.get(txnId);
    if (!row) return null;
    if (row.epoch === epoch && row.decision === null) this.decide(row, decision, reason);
    return row.decision;
  }

  async markComplete(txnId: string): Promise<void> {
    const row = this.rows.get(txnId);
    if (!row || row.completedAt !== null) return;
    row.completedAt = new Date();
    this.onChange({ kind: 'completed', txnId });
  }

  async findById(id: string): Promise<TransactionEntity | null> {
    return this.peek(id);
  }

  async list(filter: TransactionFilter): Promise<TransactionEntity[]> {
    const rows = [...this.rows.values()].filter((r) => (!filter.state || r.state === filter.state) && (!filter.protocol || r.protocol === filter.protocol));
    return rows.reverse().slice(0, filter.limit).map(copy);
  }

  async findUnfinished(limit?: number): Promise<TransactionEntity[]> {
    const rows = [...this.rows.values()].filter((r) => r.completedAt === null).map(copy);
    return limit === undefined ? rows : rows.slice(0, limit);
  }

  async unfinishedSummary(): Promise<UnfinishedSummary[]> {
    const by = new Map<string, UnfinishedSummary>();
    for (const r of this.rows.values()) {
      if (r.completedAt !== null) continue;
      const age = Date.now() - r.createdAt.getTime();
      const was = by.get(r.protocol);
      by.set(r.protocol, { protocol: r.protocol, count: (was?.count ?? 0) + 1, oldestAgeMs: Math.max(was?.oldestAgeMs ?? 0, age) });
    }
    return [...by.values()];
  }

  async countByProtocolAndState(): Promise<OutcomeCount[]> {
    const by = new Map<string, OutcomeCount>();
    for (const r of this.rows.values()) {
      const key = `${r.protocol}/${r.state}`;
      by.set(key, { protocol: r.protocol, state: r.state, count: (by.get(key)?.count ?? 0) + 1 });
    }
    return [...by.values()];
  }

  async renewLeases(ownerId: string, partitions: readonly number[], leaseMs: number): Promise<number> {
    let renewed = 0;
    for (const r of this.rows.values()) {
      if (r.ownerId !== ownerId || r.completedAt !== null || !partitions.includes(r.partition)) continue;
      r.leaseExpiresAt = new Date(Date.now() + leaseMs);
      renewed++;
    }
    return renewed;
  }

  async now(): Promise<number> {
    return Date.now();
  }

  async findUnfinishedIn(partitions: readonly number[]): Promise<TransactionEntity[]> {
    return [...this.rows.values()].filter((r) => r.completedAt === null && partitions.includes(r.partition)).map(copy);
  }

  async takeOver(txnId: string, from: { ownerId: string; epoch: number }, to: string, leaseMs: number): Promise<TransactionEntity | null> {
    const r = this.rows.get(txnId);
    if (!r || r.ownerId !== from.ownerId || r.epoch !== from.epoch || r.completedAt !== null) return null;
    if (!(r.leaseExpiresAt.getTime() < Date.now() || r.ownerId === to)) return null;
    Object.assign(r, { ownerId: to, epoch: r.epoch + 1, leaseExpiresAt: new Date(Date.now() + leaseMs) });
    this.onChange({ kind: 'other', txnId });
    return copy(r);
  }

  private decide(row: Row, decision: Decision, reason: string): void {
    Object.assign(row, { decision, decisionReason: reason, decidedAt: new Date(), state: decision === 'COMMIT' ? 'COMMITTED' : 'ABORTED' });
    this.onChange({ kind: 'decided', txnId: row.id });
  }

  private participant(txnId: string, rm: string): Row['participants'][number] | undefined {
    return this.rows.get(txnId)?.participants.find((p) => p.name === rm);
  }

  private mustGet(txnId: string): Row {
    const row = this.rows.get(txnId);
    // The SQL's `rows[0].decision` throws on a missing row too.
    if (!row) throw new Error(`transaction ${txnId} is not in the log`);
    return row;
  }
}

function copy(row: Row): TransactionEntity {
  const dates = (o: object): object => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v instanceof Date ? new Date(v.getTime()) : v]));
  return { ...dates(row), participants: row.participants.map((p) => dates(p)) } as unknown as TransactionEntity;
}
