import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One Paxos Commit acceptor's durable state, in a database of its own: per transaction the
 * membership and the leader its participants named, per instance the promise (maxBal) and the
 * accepted ballot and value (maxVBal, maxVal), and the highest round this replica used as a
 * leader per transaction, so that it never proposes twice in one ballot across restarts.
 * `acceptor_identity` pins the database to one acceptor id: two acceptors sharing one state
 * would break the quorum arithmetic.
 */
export class AcceptorState1764030000000 implements MigrationInterface {
  name = 'AcceptorState1764030000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE acceptor_identity (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        acceptor text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE acceptor_transactions (
        txn_id text PRIMARY KEY,
        membership jsonb NOT NULL,
        leader text,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE acceptor_instances (
        txn_id text NOT NULL,
        rm text NOT NULL,
        max_bal_round integer NOT NULL,
        max_bal_replica text NOT NULL,
        max_vbal_round integer,
        max_vbal_replica text,
        max_val text CHECK (max_val IN ('Prepared', 'Aborted')),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (txn_id, rm)
      )`);
    await queryRunner.query(`
      CREATE TABLE leader_rounds (
        txn_id text PRIMARY KEY,
        round integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE leader_rounds`);
    await queryRunner.query(`DROP TABLE acceptor_instances`);
    await queryRunner.query(`DROP TABLE acceptor_transactions`);
    await queryRunner.query(`DROP TABLE acceptor_identity`);
  }
}
