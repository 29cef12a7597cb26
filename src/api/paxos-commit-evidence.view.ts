/**
 * How a Paxos Commit transaction was decided, for `GET /v1/transactions/:id`: per participant
 * instance, which acceptor accepted which value in which ballot (as the leaders learned it
 * from phase 2b), the value chosen (accepted by a majority in one ballot), and the leader
 * that decided.
 */
import { ApiProperty } from '@nestjs/swagger';
import { AcceptanceRow, PaxosCommitRun } from '../coordinator/paxos-commit/paxos-commit-log';
import { hasQuorum } from '../protocols/quorum/majority';

export class BallotView {
  @ApiProperty({ description: '0 is the participant’s own ballot; leaders use rounds from 1' }) round!: number;
  @ApiProperty({ description: 'The leader owning the ballot; "" for ballot 0' }) replica!: string;
}

export class AcceptanceView {
  @ApiProperty() acceptor!: string;
  @ApiProperty({ type: BallotView }) ballot!: BallotView;
  @ApiProperty({ enum: ['Prepared', 'Aborted'] }) value!: string;
  @ApiProperty({ description: 'The leader that learned it' }) learnedBy!: string;
  @ApiProperty() learnedAt!: string;
}

export class InstanceEvidenceView {
  @ApiProperty({ description: 'The participant whose Paxos instance this is' }) participant!: string;
  @ApiProperty({ enum: ['Prepared', 'Aborted'], nullable: true, description: 'Accepted by a majority of acceptors in one ballot' }) chosen!: string | null;
  @ApiProperty({ type: BallotView, nullable: true }) chosenInBallot!: BallotView | null;
  @ApiProperty({ type: [AcceptanceView] }) accepted!: AcceptanceView[];
}

export class PaxosCommitEvidenceView {
  @ApiProperty({ type: [String] }) acceptors!: string[];
  @ApiProperty({ description: 'The leader running the transaction last' }) leader!: string;
  @ApiProperty({ nullable: true, description: 'The leader that learned the decision' }) decidedBy!: string | null;
  @ApiProperty({ nullable: true }) decidedAt!: string | null;
  @ApiProperty({ type: [InstanceEvidenceView] }) instances!: InstanceEvidenceView[];
}

const ballotKey = (b: { round: number; replica: string }): string => `${b.round}.${b.replica}`;

export function toPaxosCommitEvidence(run: PaxosCommitRun, rows: readonly AcceptanceRow[]): PaxosCommitEvidenceView {
  const { rms, acceptors } = run.membership;
  const instances = rms.map((rm): InstanceEvidenceView => {
    const mine = rows.filter((r) => r.instance === rm);
    const byBallot = new Map<string, AcceptanceRow[]>();
    for (const row of mine) byBallot.set(ballotKey(row.ballot), [...(byBallot.get(ballotKey(row.ballot)) ?? []), row]);
    // One value per ballot (a ballot has one proposer), so a majority in a ballot is a choice.
    const chosen = [...byBallot.values()].find((group) => hasQuorum(group.map((r) => r.acceptor), acceptors));
    return {
      participant: rm,
      chosen: chosen?.[0].value ?? null,
      chosenInBallot: chosen ? { ...chosen[0].ballot } : null,
      accepted: mine.map((r) => ({ acceptor: r.acceptor, ballot: { ...r.ballot }, value: r.value, learnedBy: r.learnedBy, learnedAt: new Date(r.learnedAt).toISOString() })),
    };
  });
  return {
    acceptors: [...acceptors],
    leader: run.leader,
    decidedBy: run.decidedBy,
    decidedAt: run.decidedAt ? new Date(run.decidedAt).toISOString() : null,
    instances,
  };
}
