import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit trail of operator actions (abort, redrive): who asked, why, and what came of
 * it, refusals included, so that every manual intervention in a transaction can be traced
 * back to a person and a reason. Rows outlive nothing they refer to, hence no foreign key.
 */
export class OperatorActions1763942400000 implements MigrationInterface {
  name = 'OperatorActions1763942400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE operator_actions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        txn_id uuid NOT NULL,
        action text NOT NULL CHECK (action IN ('abort', 'redrive')),
        actor text NOT NULL,
        reason text NOT NULL,
        outcome text NOT NULL,
        detail text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE INDEX operator_actions_txn_idx ON operator_actions (txn_id, created_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE operator_actions`);
  }
}
