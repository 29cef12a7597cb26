import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { TransactionEntity } from './transaction.entity';

@Entity({ name: 'transaction_participants' })
export class TransactionParticipantEntity {
  @PrimaryColumn('uuid', { name: 'txn_id' }) txnId!: string;
  @PrimaryColumn('text') name!: string;
  @Column('integer') position!: number;
  @Column('jsonb', { nullable: true }) payload!: unknown;
  @Column('text', { nullable: true }) vote!: 'YES' | 'NO' | null;
  @Column('text', { name: 'vote_reason', nullable: true }) voteReason!: string | null;
  @Column('timestamptz', { name: 'voted_at', nullable: true }) votedAt!: Date | null;
  /** 3pc only: when the participant acknowledged PreCommit. */
  @Column('timestamptz', { name: 'precommit_acked_at', nullable: true }) precommitAckedAt!: Date | null;
  @Column('timestamptz', { name: 'acked_at', nullable: true }) ackedAt!: Date | null;
  @ManyToOne(() => TransactionEntity, (t) => t.participants, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'txn_id' })
  transaction!: TransactionEntity;
}
