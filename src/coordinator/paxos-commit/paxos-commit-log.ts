/**
 * Paxos Commit's rows in the shared decision log: which leader runs each transaction (and the
 * membership its participants were given), the decision a leader learned, and the evidence it
 * learned it from. None of it is the source of truth, which is the acceptors' databases; it
 * lets any replica show how a transaction was decided, and lets a new leader tell a
 * transaction nobody began from one another leader was running.
 */
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { GroupCommitter } from '../../decision-log/group-commit';
import { Decision } from '../../protocols/common/effects';
import { Ballot, InstanceValue, Membership, Value } from '../../protocols/paxos-commit/messages';

export interface PaxosCommitRun {
  readonly membership: Membership;
  readonly leader: string;
  readonly decidedBy: string | null;
  readonly decidedAt: Date | null;
}

export type RunClaim = { readonly began: true } | { readonly began: false; readonly membership: Membership; readonly previousLeader: string };

export interface AcceptanceRow {
  readonly instance: string;
  readonly acceptor: string;
  readonly ballot: Ballot;
  readonly value: Value;
  readonly learnedBy: string;
  readonly learnedAt: Date;
}

@Injectable()
export class PaxosCommitLog {
  constructor(
    private readonly dataSource: DataSource,
    private readonly committer: GroupCommitter,
  ) {}

  /**
   * Makes `leader` the one running `txnId`. The first claim begins the transaction; a later
   * one takes it over and gets the membership the participants were already given.
   */
  claimRun(txnId: string, membership: Membership, leader: string): Promise<RunClaim> {
    return this.committer.submit(async (manager): Promise<RunClaim> => {
      const inserted: unknown[] = await manager.query(
        `INSERT INTO paxos_commit_runs (txn_id, membership, leader) VALUES ($1, $2::jsonb, $3)
         ON CONFLICT (txn_id) DO NOTHING RETURNING txn_id`,
        [txnId, JSON.stringify(membership), leader],
      );
      if (inserted.length > 0) return { began: true };
      const [previous]: { membership: Membership; leader: string }[] = await manager.query(
        `SELECT membership, leader FROM paxos_commit_runs WHERE txn_id = $1 FOR UPDATE`,
        [txnId],
      );
      await manager.query(`UPDATE paxos_commit_runs SET leader = $2, taken_over_at = now() WHERE txn_id = $1`, [txnId, leader]);
      return { began: false, membership: previous.membership, previousLeader: previous.leader };
    });
  }

  async findRun(txnId: string): Promise<PaxosCommitRun | null> {
    const [row] = await this.dataSource.query<{ membership: Membership; leader: string; decided_by: string | null; decided_at: Date | null }[]>(
      `SELECT membership, leader, decided_by, decided_at FROM paxos_commit_runs WHERE txn_id = $1`,
      [txnId],
    );
    return row ? { membership: row.membership, leader: row.leader, decidedBy: row.decided_by, decidedAt: row.decided_at } : null;
  }

  /** Records what one phase 2b told `learnedBy`; repeats are harmless. */
  recordPhase2b(txnId: string, acceptor: string, ballot: Ballot, entries: readonly InstanceValue[], learnedBy: string): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return this.committer.submit(async (manager) => {
      const values: unknown[] = [];
      const tuples = entries.map((entry, i) => {
        values.push(txnId, entry.rm, acceptor, ballot.round, ballot.replica, entry.value, learnedBy);
        const b = i * 7;
        return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7})`;
      });
      await manager.query(
        `INSERT INTO paxos_commit_evidence (txn_id, instance, acceptor, ballot_round, ballot_replica, value, learned_by)
         VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`,
        values,
      );
    });
  }

  /** Names the leader that learned the decision; the first one to record it stays. */
  recordDecision(txnId: string, decision: Decision, leader: string): Promise<void> {
    return this.committer.submit(async (manager) => {
      await manager.query(
        `UPDATE paxos_commit_runs SET decided_by = $2, decision = $3, decided_at = now() WHERE txn_id = $1 AND decided_by IS NULL`,
        [txnId, leader, decision],
      );
    });
  }

  async acceptances(txnId: string): Promise<AcceptanceRow[]> {
    const rows = await this.dataSource.query<
      { instance: string; acceptor: string; ballot_round: number; ballot_replica: string; value: Value; learned_by: string; learned_at: Date }[]
    >(
      `SELECT instance, acceptor, ballot_round, ballot_replica, value, learned_by, learned_at FROM paxos_commit_evidence
        WHERE txn_id = $1 ORDER BY instance, ballot_round, ballot_replica, learned_at, acceptor`,
      [txnId],
    );
    return rows.map((r) => ({
      instance: r.instance,
      acceptor: r.acceptor,
      ballot: { round: r.ballot_round, replica: r.ballot_replica },
      value: r.value,
      learnedBy: r.learned_by,
      learnedAt: r.learned_at,
    }));
  }

  /**
   * Marks a decided transaction complete once every participant acknowledged it; true only
   * for the one call that completed it, so that completion is reported once.
   */
  complete(txnId: string): Promise<boolean> {
    return this.committer.submit(async (manager) => {
      const result: [unknown[], number] = await manager.query(
        `UPDATE transactions t SET completed_at = now()
          WHERE t.id = $1 AND t.completed_at IS NULL AND t.decision IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM transaction_participants p WHERE p.txn_id = t.id AND p.acked_at IS NULL)`,
        [txnId],
      );
      return result[1] > 0;
    });
  }

  /**
   * How long ago `txnId` was logged, by the database's clock alone (created_at was stamped by
   * it), so that no decision compares that clock with this replica's; null if unknown.
   */
  async ageMs(txnId: string): Promise<number | null> {
    const [row] = await this.dataSource.query<{ age_ms: number }[]>(
      `SELECT (extract(epoch FROM now() - created_at) * 1000)::float8 AS age_ms FROM transactions WHERE id = $1`,
      [txnId],
    );
    return row ? Number(row.age_ms) : null;
  }

  /** Paxos Commit transactions not yet acknowledged by every participant, oldest first. */
  async unfinishedIds(): Promise<string[]> {
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT id FROM transactions WHERE protocol = 'paxos-commit' AND completed_at IS NULL ORDER BY created_at`,
    );
    return rows.map((r) => r.id);
  }
}
