import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { traceIdOf } from '../telemetry/traceparent';
import { PaxosCommitEvidenceView } from './paxos-commit-evidence.view';

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

export class ParticipantView {
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ description: 'The payload sent with PREPARE' }) payload!: unknown;
  @ApiProperty({ enum: ['YES', 'NO'], nullable: true }) vote!: 'YES' | 'NO' | null;
  @ApiProperty({ nullable: true }) voteReason!: string | null;
  @ApiProperty({ nullable: true }) votedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, description: '3pc: when the participant acknowledged PreCommit' }) precommitAckedAt?: string | null;
  @ApiProperty() acked!: boolean;
  @ApiProperty({ nullable: true }) ackedAt!: string | null;
}

export class TransactionView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['2pc', '3pc', 'paxos-commit'] }) protocol!: string;
  @ApiProperty({ enum: ['PREPARING', 'PRECOMMITTED', 'COMMITTED', 'ABORTED'], description: 'PRECOMMITTED is 3pc only' }) state!: string;
  @ApiProperty({ enum: ['COMMIT', 'ABORT'], nullable: true }) decision!: string | null;
  @ApiProperty({ nullable: true }) decisionReason!: string | null;
  @ApiProperty({ description: 'Every participant acknowledged the decision' }) completed!: boolean;
  @ApiProperty() timeoutMs!: number;
  @ApiProperty({ nullable: true }) idempotencyKey!: string | null;
  @ApiProperty() owner!: string;
  @ApiProperty() epoch!: number;
  @ApiProperty() createdAt!: string;
  @ApiPropertyOptional({ nullable: true, description: '3pc: when the PreCommit was logged' }) precommittedAt?: string | null;
  @ApiProperty({ nullable: true }) decidedAt!: string | null;
  @ApiProperty({ nullable: true }) completedAt!: string | null;
  @ApiProperty({ nullable: true, description: 'W3C trace id of the trace the transaction belongs to' }) traceId!: string | null;
  @ApiProperty({ type: [ParticipantView] }) participants!: ParticipantView[];
  @ApiPropertyOptional({ type: PaxosCommitEvidenceView, description: 'paxos-commit only, on GET of one transaction: how the decision was reached' })
  evidence?: PaxosCommitEvidenceView;
}

export function toTransactionView(txn: TransactionEntity, evidence?: PaxosCommitEvidenceView): TransactionView {
  return {
    id: txn.id,
    protocol: txn.protocol,
    state: txn.state,
    decision: txn.decision,
    decisionReason: txn.decisionReason,
    completed: txn.completedAt !== null,
    timeoutMs: txn.timeoutMs,
    idempotencyKey: txn.idempotencyKey,
    owner: txn.ownerId,
    epoch: txn.epoch,
    createdAt: iso(txn.createdAt)!,
    // Only 3pc has a PreCommit phase; other protocols leave these fields out.
    ...(txn.protocol === '3pc' ? { precommittedAt: iso(txn.precommittedAt) } : {}),
    decidedAt: iso(txn.decidedAt),
    completedAt: iso(txn.completedAt),
    traceId: traceIdOf(txn.traceContext),
    participants: (txn.participants ?? []).map((p) => ({
      name: p.name,
      payload: p.payload,
      vote: p.vote,
      voteReason: p.voteReason,
      votedAt: iso(p.votedAt),
      ...(txn.protocol === '3pc' ? { precommitAckedAt: iso(p.precommitAckedAt) } : {}),
      acked: p.ackedAt !== null,
      ackedAt: iso(p.ackedAt),
    })),
    ...(evidence ? { evidence } : {}),
  };
}
