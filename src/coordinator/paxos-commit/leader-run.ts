/**
 * What the leader driver keeps in memory for a transaction it runs: the core's state plus
 * the facts the wire and the API need (payloads, timeout, trace), and the explanation of an
 * abort, which the core does not keep because no protocol rule depends on it.
 */
import { hasQuorum } from '../../protocols/quorum/majority';
import { LeaderState } from '../../protocols/paxos-commit/leader';
import { isBallotZero } from '../../protocols/paxos-commit/messages';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { TransactionTrace } from '../transaction-trace';

export interface LeaderRun {
  state: LeaderState;
  readonly txnId: string;
  readonly payloads: ReadonlyMap<string, unknown>;
  readonly timeoutMs: number;
  readonly traceContext: string | null;
  readonly startedAt: number;
  readonly trace: TransactionTrace;
  /** Why participants voted Aborted, as the acceptors passed it on. */
  readonly reasons: Map<string, string>;
  /** Instances whose chosen value is already in the shared log's vote column. */
  readonly recorded: Set<string>;
  /** Why the latest leader ballot was started, to explain an instance it made Aborted. */
  cause: string;
  /** Leader ballots this run has started (beyond ballot 0), for the retry backoff. */
  ballots: number;
  /** When the prepare timeout ends, on this replica's monotonic clock (runs begun here). */
  prepareDeadline?: number;
}

export function newRun(txn: TransactionEntity, state: LeaderState): LeaderRun {
  return {
    state,
    txnId: txn.id,
    payloads: new Map(txn.participants.map((p) => [p.name, p.payload])),
    timeoutMs: txn.timeoutMs,
    traceContext: txn.traceContext,
    startedAt: new Date(txn.createdAt).getTime(),
    trace: new TransactionTrace(txn.id, 'paxos-commit', txn.traceContext, txn.decision),
    reasons: new Map(),
    recorded: new Set(),
    cause: 'prepare timed out',
    ballots: 0,
  };
}

/** Whether `rm` itself voted Aborted (in ballot 0), as far as this leader has heard. */
export function votedAborted(run: LeaderRun, rm: string): boolean {
  if (run.reasons.has(rm)) return true;
  const ballots = run.state.learner.votes[rm] ?? {};
  if (Object.entries(ballots).some(([key, votes]) => key.startsWith('0.') && votes.value === 'Aborted')) return true;
  const reports = Object.values(run.state.promises).flat();
  return reports.some((r) => r.rm === rm && r.maxVBal !== undefined && isBallotZero(r.maxVBal) && r.maxVal === 'Aborted');
}

/** Whether the instance of `rm` was chosen in its ballot 0, i.e. by its participant's own vote. */
export function chosenInBallotZero(run: LeaderRun, rm: string): boolean {
  const zero = Object.entries(run.state.learner.votes[rm] ?? {}).find(([key]) => key.startsWith('0.'));
  return zero !== undefined && hasQuorum(zero[1].acceptors, run.state.membership.acceptors);
}

/** The reason logged with the decision: who voted no, or whose vote never came and why. */
export function decisionReason(run: LeaderRun, decision: 'COMMIT' | 'ABORT'): string {
  if (decision === 'COMMIT') return 'every participant prepared';
  const { chosen } = run.state.learner;
  const aborted = run.state.membership.rms.filter((rm) => chosen[rm] === 'Aborted');
  const voter = aborted.find((rm) => votedAborted(run, rm));
  if (voter) {
    const reason = run.reasons.get(voter);
    return `${voter} voted no${reason ? `: ${reason}` : ''}`;
  }
  const silent = aborted[0] ?? 'a participant';
  return `${silent} did not vote in time (${run.cause})`;
}
