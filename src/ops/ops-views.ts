/**
 * What the operations endpoints answer with, built from the decision log and the audit
 * trail. Every time comes from the log's own timestamps, so a timeline reads the same on
 * every replica and after any restart.
 */
import { ApiProperty } from '@nestjs/swagger';
import { OutcomeCount, UnfinishedSummary } from '../decision-log/decision-log.repository';
import { OperatorActionEntity } from '../decision-log/operator-action.entity';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { traceIdOf } from '../telemetry/traceparent';

export type TimelineEvent =
  | { readonly at: string; readonly type: 'created'; readonly participants: readonly string[]; readonly timeoutMs: number }
  | { readonly at: string; readonly type: 'voted'; readonly participant: string; readonly vote: 'YES' | 'NO'; readonly reason: string | null }
  | { readonly at: string; readonly type: 'decided'; readonly decision: 'COMMIT' | 'ABORT'; readonly reason: string | null }
  | { readonly at: string; readonly type: 'acked'; readonly participant: string }
  | { readonly at: string; readonly type: 'completed' }
  | {
      readonly at: string;
      readonly type: 'operatorAction';
      readonly action: string;
      readonly by: string;
      readonly reason: string;
      readonly outcome: string;
      readonly detail: string | null;
    };

export class TimelineView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() protocol!: string;
  @ApiProperty({ enum: ['PREPARING', 'PRECOMMITTED', 'COMMITTED', 'ABORTED'] }) state!: string;
  @ApiProperty() completed!: boolean;
  @ApiProperty({ nullable: true, description: 'W3C trace id from the stored trace context' }) traceId!: string | null;
  @ApiProperty() owner!: string;
  @ApiProperty() epoch!: number;
  @ApiProperty({ type: 'array', items: { type: 'object' }, description: 'created, voted, decided, acked, completed and operatorAction events in time order' }) events!: TimelineEvent[];
}

export class UnfinishedView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() protocol!: string;
  @ApiProperty({ enum: ['PREPARING', 'PRECOMMITTED', 'COMMITTED', 'ABORTED'] }) state!: string;
  @ApiProperty({ nullable: true }) decision!: string | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ description: 'Milliseconds since the transaction was created' }) ageMs!: number;
  @ApiProperty() participants!: number;
  @ApiProperty() votes!: number;
  @ApiProperty() acks!: number;
  @ApiProperty({ type: [String], description: 'Undecided: who has not voted; decided: who has not acknowledged' }) waitingOn!: string[];
  @ApiProperty() owner!: string;
  @ApiProperty({ nullable: true }) traceId!: string | null;
}

export class OpsSummaryView {
  @ApiProperty({ type: 'array', items: { type: 'object' }, description: 'Transactions per protocol and state' }) outcomes!: OutcomeCount[];
  @ApiProperty({ type: 'array', items: { type: 'object' }, description: 'Unfinished transactions per protocol, with the age of the oldest (oldestAgeMs)' }) unfinished!: UnfinishedSummary[];
}

const iso = (d: Date): string => new Date(d).toISOString();
// Facts logged in one group commit share a timestamp; the protocol's order breaks the tie.
const RANK: Record<TimelineEvent['type'], number> = { created: 0, voted: 1, decided: 2, acked: 3, completed: 4, operatorAction: 5 };

export function toTimeline(txn: TransactionEntity, actions: readonly OperatorActionEntity[]): TimelineView {
  const participants = txn.participants ?? [];
  const events: TimelineEvent[] = [{ at: iso(txn.createdAt), type: 'created', participants: participants.map((p) => p.name), timeoutMs: txn.timeoutMs }];
  for (const p of participants) {
    if (p.vote && p.votedAt) events.push({ at: iso(p.votedAt), type: 'voted', participant: p.name, vote: p.vote, reason: p.voteReason });
  }
  if (txn.decision && txn.decidedAt) events.push({ at: iso(txn.decidedAt), type: 'decided', decision: txn.decision, reason: txn.decisionReason });
  for (const p of participants) if (p.ackedAt) events.push({ at: iso(p.ackedAt), type: 'acked', participant: p.name });
  if (txn.completedAt) events.push({ at: iso(txn.completedAt), type: 'completed' });
  for (const a of actions) {
    events.push({ at: iso(a.createdAt), type: 'operatorAction', action: a.action, by: a.actor, reason: a.reason, outcome: a.outcome, detail: a.detail });
  }
  events.sort((a, b) => a.at.localeCompare(b.at) || RANK[a.type] - RANK[b.type]);
  return {
    id: txn.id,
    protocol: txn.protocol,
    state: txn.state,
    completed: txn.completedAt !== null,
    traceId: traceIdOf(txn.traceContext),
    owner: txn.ownerId,
    epoch: txn.epoch,
    events,
  };
}

export function toUnfinished(txn: TransactionEntity, now: number): UnfinishedView {
  const participants = txn.participants ?? [];
  const waitingOn = txn.decision ? participants.filter((p) => !p.ackedAt) : participants.filter((p) => !p.vote);
  return {
    id: txn.id,
    protocol: txn.protocol,
    state: txn.state,
    decision: txn.decision,
    createdAt: iso(txn.createdAt),
    ageMs: Math.max(0, now - new Date(txn.createdAt).getTime()),
    participants: participants.length,
    votes: participants.filter((p) => p.vote !== null).length,
    acks: participants.filter((p) => p.ackedAt !== null).length,
    waitingOn: waitingOn.map((p) => p.name),
    owner: txn.ownerId,
    traceId: traceIdOf(txn.traceContext),
  };
}
