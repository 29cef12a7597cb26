import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What three-phase commit adds to the decision log. The PreCommit record is forced before
 * any PreCommit leaves: a coordinator that restarts and finds it knows that participants may
 * already be committing, so it may no longer abort on its own (it asks them instead). The
 * transaction shows it as state PRECOMMITTED until the decision. Which participants
 * acknowledged PreCommit is kept for operators only; nothing waits for those writes.
 */
export class ThreePhasePrecommit1764043200000 implements MigrationInterface {
  name = 'ThreePhasePrecommit1764043200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE transactions ADD COLUMN precommitted_at timestamptz`);
    await queryRunner.query(`ALTER TABLE transactions DROP CONSTRAINT transactions_state_check`);
    await queryRunner.query(
      `ALTER TABLE transactions ADD CONSTRAINT transactions_state_check CHECK (state IN ('PREPARING', 'PRECOMMITTED', 'COMMITTED', 'ABORTED'))`,
    );
    await queryRunner.query(`ALTER TABLE transaction_participants ADD COLUMN precommit_acked_at timestamptz`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE transaction_participants DROP COLUMN precommit_acked_at`);
    // A transaction caught between PreCommit and its decision goes back to the state 2PC knows.
    await queryRunner.query(`UPDATE transactions SET state = 'PREPARING' WHERE state = 'PRECOMMITTED'`);
    await queryRunner.query(`ALTER TABLE transactions DROP CONSTRAINT transactions_state_check`);
    await queryRunner.query(`ALTER TABLE transactions ADD CONSTRAINT transactions_state_check CHECK (state IN ('PREPARING', 'COMMITTED', 'ABORTED'))`);
    await queryRunner.query(`ALTER TABLE transactions DROP COLUMN precommitted_at`);
  }
}
