import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the Paxos Commit leaders learned, kept in the shared log for operators and the API:
 * which leader runs each transaction (and with which membership), and every phase 2b a leader
 * heard: per participant instance, which acceptor accepted which value in which ballot. The
 * acceptors' own databases are the source of truth; these rows only show how it was decided.
 */
export class PaxosCommitEvidence1764030000000 implements MigrationInterface {
  name = 'PaxosCommitEvidence1764030000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE paxos_commit_runs (
        txn_id uuid PRIMARY KEY REFERENCES transactions (id) ON DELETE CASCADE,
        membership jsonb NOT NULL,
        leader text NOT NULL,
        began_at timestamptz NOT NULL DEFAULT now(),
        taken_over_at timestamptz,
        decided_by text,
        decision text CHECK (decision IN ('COMMIT', 'ABORT')),
        decided_at timestamptz
      )`);
    await queryRunner.query(`
      CREATE TABLE paxos_commit_evidence (
        txn_id uuid NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
        instance text NOT NULL,
        acceptor text NOT NULL,
        ballot_round integer NOT NULL,
        ballot_replica text NOT NULL,
        value text NOT NULL CHECK (value IN ('Prepared', 'Aborted')),
        learned_by text NOT NULL,
        learned_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (txn_id, instance, acceptor, ballot_round, ballot_replica)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE paxos_commit_evidence`);
    await queryRunner.query(`DROP TABLE paxos_commit_runs`);
  }
}
