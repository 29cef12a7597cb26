import { Column, Entity, OneToMany, PrimaryColumn } from 'typeorm';
import { TransactionParticipantEntity } from './transaction-participant.entity';

/** PRECOMMITTED is 3pc only: every participant voted yes and the PreCommit is logged. */
export type TransactionState = 'PREPARING' | 'PRECOMMITTED' | 'COMMITTED' | 'ABORTED';

@Entity({ name: 'transactions' })
export class TransactionEntity {
  @PrimaryColumn('uuid') id!: string;
  @Column('text') protocol!: string;
  @Column('text') state!: TransactionState;
  @Column('text', { nullable: true }) decision!: 'COMMIT' | 'ABORT' | null;
  @Column('text', { name: 'decision_reason', nullable: true }) decisionReason!: string | null;
  @Column('text', { name: 'idempotency_key', nullable: true }) idempotencyKey!: string | null;
  @Column('text', { name: 'request_hash' }) requestHash!: string;
  @Column('integer', { name: 'timeout_ms' }) timeoutMs!: number;
  @Column('text', { name: 'owner_id' }) ownerId!: string;
  @Column('integer') epoch!: number;
  @Column('integer') partition!: number;
  @Column('timestamptz', { name: 'lease_expires_at' }) leaseExpiresAt!: Date;
  @Column('text', { name: 'trace_context', nullable: true }) traceContext!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'precommitted_at', nullable: true }) precommittedAt!: Date | null;
  @Column('timestamptz', { name: 'decided_at', nullable: true }) decidedAt!: Date | null;
  @Column('timestamptz', { name: 'completed_at', nullable: true }) completedAt!: Date | null;
  @OneToMany(() => TransactionParticipantEntity, (p) => p.transaction) participants!: TransactionParticipantEntity[];
}
