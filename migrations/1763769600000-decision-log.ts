import { MigrationInterface, QueryRunner } from 'typeorm';

/** The two-phase-commit decision log and the participant registry. */
export class DecisionLog1763769600000 implements MigrationInterface {
  name = 'DecisionLog1763769600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE transactions (
        id uuid PRIMARY KEY,
        protocol text NOT NULL,
        state text NOT NULL CHECK (state IN ('PREPARING', 'COMMITTED', 'ABORTED')),
        decision text CHECK (decision IN ('COMMIT', 'ABORT')),
        decision_reason text,
        idempotency_key text UNIQUE,
        request_hash text NOT NULL,
        timeout_ms integer NOT NULL,
        owner_id text NOT NULL,
        epoch integer NOT NULL DEFAULT 1,
        trace_context text,
        created_at timestamptz NOT NULL DEFAULT now(),
        decided_at timestamptz,
        completed_at timestamptz
      )`);
    await queryRunner.query(`CREATE INDEX transactions_created_at_idx ON transactions (created_at DESC)`);
    await queryRunner.query(`CREATE INDEX transactions_unfinished_idx ON transactions (created_at) WHERE completed_at IS NULL`);
    await queryRunner.query(`
      CREATE TABLE transaction_participants (
        txn_id uuid NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
        name text NOT NULL,
        position integer NOT NULL,
        payload jsonb,
        vote text CHECK (vote IN ('YES', 'NO')),
        vote_reason text,
        voted_at timestamptz,
        acked_at timestamptz,
        PRIMARY KEY (txn_id, name)
      )`);
    await queryRunner.query(`
      CREATE TABLE participants (
        name text PRIMARY KEY,
        protocols text[] NOT NULL,
        topic text NOT NULL,
        instance_id text NOT NULL,
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE participants`);
    await queryRunner.query(`DROP TABLE transaction_participants`);
    await queryRunner.query(`DROP TABLE transactions`);
  }
}
