import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { traceIdOf } from '../telemetry/traceparent';

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

export class ParticipantView {
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ description: 'The payload sent with PREPARE' }) payload!: unknown;
  @ApiProperty({ enum: ['YES', 'NO'], nullable: true }) vote!: 'YES' | 'NO' | null;
  @ApiProperty({ nullable: true }) voteReason!: string | null;
  @ApiProperty({ nullable: true }) votedAt!: string | null;
  @ApiProperty() acked!: boolean;
  @ApiProperty({ nullable: true }) ackedAt!: string | null;
}

export class TransactionView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['2pc', '3pc', 'paxos-commit'] }) protocol!: string;
  @ApiProperty({ enum: ['PREPARING', 'COMMITTED', 'ABORTED'] }) state!: string;
  @ApiProperty({ enum: ['COMMIT', 'ABORT'], nullable: true }) decision!: string | null;
  @ApiProperty({ nullable: true }) decisionReason!: string | null;
  @ApiProperty({ description: 'Every participant acknowledged the decision' }) completed!: boolean;
  @ApiProperty() timeoutMs!: number;
  @ApiProperty({ nullable: true }) idempotencyKey!: string | null;
  @ApiProperty() owner!: string;
  @ApiProperty() epoch!: number;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ nullable: true }) decidedAt!: string | null;
  @ApiProperty({ nullable: true }) completedAt!: string | null;
  @ApiProperty({ nullable: true, description: 'W3C trace id of the trace the transaction belongs to' }) traceId!: string | null;
  @ApiProperty({ type: [ParticipantView] }) participants!: ParticipantView[];
}

export function toTransactionView(txn: TransactionEntity): TransactionView {
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
    decidedAt: iso(txn.decidedAt),
    completedAt: iso(txn.completedAt),
    traceId: traceIdOf(txn.traceContext),
    participants: (txn.participants ?? []).map((p) => ({
      name: p.name,
      payload: p.payload,
      vote: p.vote,
      voteReason: p.voteReason,
      votedAt: iso(p.votedAt),
      acked: p.ackedAt !== null,
      ackedAt: iso(p.ackedAt),
    })),
  };
}
