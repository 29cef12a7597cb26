import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type OperatorActionKind = 'abort' | 'redrive';
/** `refused` when the action would have broken atomicity or could not run here; see `detail`. */
export type OperatorActionOutcome = 'aborted' | 'redriven' | 'refused';

@Entity({ name: 'operator_actions' })
export class OperatorActionEntity {
  // Postgres returns bigint as a string so that no id loses precision.
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' }) id!: string;
  @Column('uuid', { name: 'txn_id' }) txnId!: string;
  @Column('text') action!: OperatorActionKind;
  @Column('text') actor!: string;
  @Column('text') reason!: string;
  @Column('text') outcome!: OperatorActionOutcome;
  @Column('text', { nullable: true }) detail!: string | null;
  @Column('timestamptz', { name: 'created_at', default: () => 'now()' }) createdAt!: Date;
}
