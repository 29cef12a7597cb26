import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ownership of transactions by coordinator replicas: each transaction lives on one partition
 * of the coordinator topic, is run by the replica that holds that partition, and that owner
 * keeps a lease on it. A replica takes over only once the lease has expired, and raises the
 * epoch when it does.
 */
export class OwnershipLeases1763856000000 implements MigrationInterface {
  name = 'OwnershipLeases1763856000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE transactions ADD COLUMN partition integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE transactions ADD COLUMN lease_expires_at timestamptz NOT NULL DEFAULT now()`);
    await queryRunner.query(`CREATE INDEX transactions_unfinished_partition_idx ON transactions (partition) WHERE completed_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX transactions_unfinished_partition_idx`);
    await queryRunner.query(`ALTER TABLE transactions DROP COLUMN lease_expires_at`);
    await queryRunner.query(`ALTER TABLE transactions DROP COLUMN partition`);
  }
}
