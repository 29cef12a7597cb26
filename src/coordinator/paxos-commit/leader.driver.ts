/**
 * Runs the Paxos Commit leader core (protocols/paxos-commit/leader.ts) for the transactions
 * this replica leads. A round is committed to the replica's own database before its phase 1a
 * leaves (a restarted leader never reuses a ballot); what the leader learns from phase 2b is
 * recorded in the shared log as evidence, and the decision it learns is logged there before
 * any participant hears it from this leader, so the API never shows less than a participant
 * knows. The shared log is visibility, not truth: the outcome can always be read again from
 * the acceptors, which is what a new leader does. Which transactions to run is decided by
 * PaxosCommitDriver; this class carries out one transaction's steps, one at a time.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { context } from '@opentelemetry/api';
import { Failpoint, Failpoints } from '../../common/failpoints';
import { KeyedSerialQueue } from '../../common/keyed-serial-queue';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { DecisionLogRepository } from '../../decision-log/decision-log.repository';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { Decision, orderForDurability } from '../../protocols/common/effects';
import { LeaderConfig, LeaderEffect, LeaderInput, restoreLeader, step } from '../../protocols/paxos-commit/leader';
import { Membership, PaxosCommitMessage } from '../../protocols/paxos-commit/messages';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { TransactionEvents, TransactionFact } from '../../telemetry/transaction-events';
import { ATTR_TXN_DECISION, activeTraceparent, contextForTransaction, inSpan } from '../../telemetry/txn-tracing';
import { Envelope, EnvelopeOf } from '../../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { KAFKA_TOPICS } from '../../transport/kafka/kafka.constants';
import { paxosCommitTopicsFor } from '../../transport/kafka/paxos-commit-topics';
import { PAXOS_COMMIT, outcomeEnvelope, phaseEnvelope, phaseMessage, reasonsOf } from '../../transport/kafka/paxos-commit-wire';
import { HEADER_TRACEPARENT, Topics } from '../../transport/kafka/topics';
import { DecisionWaiters } from '../decision-waiters';
import { AcceptorStore } from './acceptor-store';
import { FailureDetector } from './failure-detector';
import { LeaderRun, LeaderTimer, chosenInBallotZero, decisionReason, newRun, votedAborted } from './leader-run';
import { PaxosCommitLog } from './paxos-commit-log';

type Input = LeaderInput & { readonly cause?: string };

@Injectable()
export class LeaderDriver implements OnApplicationShutdown {
  private readonly logger = new Logger(LeaderDriver.name);
  private readonly runs = new Map<string, LeaderRun>();
  private readonly starting = new Set<string>();
  /** When each run's prepare timeout ends, on this replica's monotonic clock. */
  private readonly deadlines = new Map<string, number>();
  private readonly queue = new KeyedSerialQueue();
  private readonly failpoints: Failpoints;
  private stopping = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KAFKA_TOPICS) private readonly topics: Topics,
    private readonly store: AcceptorStore,
    private readonly log: PaxosCommitLog,
    private readonly txnLog: DecisionLogRepository,
    private readonly publisher: KafkaPublisher,
    private readonly registry: ParticipantRegistry,
    private readonly waiters: DecisionWaiters,
    private readonly events: TransactionEvents,
    private readonly detector: FailureDetector,
  ) {
    this.failpoints = new Failpoints(config.failpoints);
  }

  onApplicationShutdown(): void {
    this.stopping = true;
    for (const run of this.runs.values()) for (const timer of run.timers.values()) clearTimeout(timer);
  }

  isRunning(txnId: string): boolean {
    return this.runs.has(txnId) || this.starting.has(txnId);
  }

  runningCount(): number {
    return this.runs.size;
  }

  /** Undecided runs still listening for the ballot-0 vote of `rm`. */
  waitingFor(rm: string): string[] {
    return [...this.runs.values()]
      .filter((r) => !r.state.decision && r.state.phase === 'listening' && r.state.membership.rms.includes(rm) && r.state.learner.chosen[rm] === undefined)
      .map((r) => r.txnId);
  }

  /**
   * Runs an undecided transaction here: begins it if no leader has, otherwise takes it over
   * with a ballot above every round this replica has used for it.
   */
  async start(txn: TransactionEntity): Promise<void> {
    if (this.isRunning(txn.id) || this.stopping) return;
    this.starting.add(txn.id);
    try {
      const me = this.config.coordinatorId;
      const proposed: Membership = { rms: txn.participants.map((p) => p.name), acceptors: this.acceptors() };
      const claim = await this.log.claimRun(txn.id, proposed, me);
      const membership = claim.began ? proposed : claim.membership;
      // Restored even for a begin: a round used before a restart must never be used again.
      const state = restoreLeader(txn.id, me, membership, await this.store.leaderRecords(txn.id));
      // The age comes from the database that stamped created_at, never from comparing clocks.
      this.deadlines.set(txn.id, performance.now() + txn.timeoutMs - ((await this.log.ageMs(txn.id)) ?? 0));
      this.runs.set(txn.id, newRun(txn, state));
      if (!claim.began && claim.previousLeader !== me) {
        this.logger.log(`taking over transaction ${txn.id} from leader ${claim.previousLeader}`);
        this.emit(this.runs.get(txn.id)!, { type: 'takenOver', fromOwner: claim.previousLeader, epoch: txn.epoch });
      }
      void this.dispatch(txn.id, claim.began ? { type: 'begin' } : { type: 'takeover', cause: 'leader takeover' });
    } finally {
      this.starting.delete(txn.id);
    }
  }

  /** Finishes a transaction whose decision is logged: tells every participant that has not acknowledged it. */
  finishDecided(txn: TransactionEntity): void {
    if (this.isRunning(txn.id) || !txn.decision || this.stopping) return;
    const membership: Membership = { rms: txn.participants.map((p) => p.name), acceptors: this.acceptors() };
    const state = { ...restoreLeader(txn.id, this.config.coordinatorId, membership, []), decision: txn.decision };
    const run = newRun(txn, state);
    this.runs.set(txn.id, run);
    run.trace.startPhase('commit', contextForTransaction(txn.traceContext), { 'txn.recovered': true, [ATTR_TXN_DECISION]: txn.decision });
    this.emit(run, { type: 'recovered', decided: true });
    void this.queue.run(txn.id, () => this.resend(txn.id)).catch((error: Error) => {
      this.logger.warn(`transaction ${txn.id}: resend failed: ${error.message}`);
      this.rearm(txn.id);
    });
  }

  /** A PHASE1B or PHASE2B for this leader. */
  deliver(envelope: EnvelopeOf<'PHASE1B' | 'PHASE2B'>): void {
    const message = phaseMessage(envelope);
    const run = this.runs.get(envelope.txnId);
    if (!run || !message || (message.type !== 'phase1b' && message.type !== 'phase2b')) return;
    if (envelope.type === 'PHASE2B') for (const [rm, reason] of reasonsOf(envelope)) run.reasons.set(rm, reason);
    void this.dispatch(envelope.txnId, message.type === 'phase1b' ? { type: 'phase1b', message } : { type: 'phase2b', message });
  }

  /** A participant in doubt asks; a decided run answers it. */
  query(txnId: string, rm: string): void {
    if (this.runs.has(txnId)) void this.dispatch(txnId, { type: 'query', rm });
  }

  /** Starts a higher ballot now instead of waiting (a participant went away, an operator asked). */
  ballotNow(txnId: string, cause: string): void {
    const run = this.runs.get(txnId);
    if (run && !run.state.decision) void this.dispatch(txnId, { type: 'timer', timer: 'retry', cause });
  }

  /** Stops running a transaction another leader now runs. */
  drop(txnId: string): void {
    const run = this.runs.get(txnId);
    if (!run) return;
    for (const timer of run.timers.values()) clearTimeout(timer);
    run.trace.end();
    this.runs.delete(txnId);
    this.deadlines.delete(txnId);
  }

  private dispatch(txnId: string, input: Input): Promise<void> {
    return this.queue.run(txnId, () => this.apply(txnId, input)).catch((error: Error) => {
      this.logger.error(`transaction ${txnId}: ${input.type} failed: ${error.stack ?? error.message}`);
      this.rearm(txnId);
    });
  }

  /**
   * After a failed step (a database or broker outage) the run tries again later rather than
   * stalling: a higher ballot if undecided, the outcome again if decided.
   */
  private rearm(txnId: string): void {
    const run = this.runs.get(txnId);
    if (!run || this.stopping) return;
    if (run.state.decision) this.arm(run, 'resend', this.config.resendIntervalMs);
    else this.arm(run, 'retry', this.config.paxosCommit?.retryIntervalMs ?? 1000);
  }

  private async apply(txnId: string, input: Input): Promise<void> {
    const run = this.runs.get(txnId);
    if (!run || this.stopping) return;
    const parent = contextForTransaction(run.traceContext);
    if (input.type === 'phase2b') {
      const { acceptor, ballot, entries } = input.message;
      await this.log.recordPhase2b(txnId, acceptor, ballot, entries, this.config.coordinatorId);
    }
    const result = step(run.state, input, this.leaderConfig(run));
    const { persists, rest } = orderForDurability<LeaderEffect>(result.effects);
    if (input.type === 'begin' || input.type === 'takeover') run.trace.startPhase('prepare', parent, input.type === 'takeover' ? { 'txn.takeover': true } : {});
    if (persists.length > 0 && input.cause) run.cause = input.cause;
    // Persist before send: the round is durable before any acceptor hears of it.
    for (const effect of persists) if (effect.kind === 'persist') await this.store.persistRound(txnId, effect.record.round);
    run.state = result.state;
    // The votes and the decision are independent rows: written together, they share a group commit.
    const votes = this.recordChosen(run);
    const decided = rest.find((e) => e.kind === 'decide');
    if (decided?.kind === 'decide') await this.recordDecision(run, decided.decision, parent, votes);
    else await votes;
    const outbound: OutboundMessage[] = [];
    for (const effect of rest) {
      if (effect.kind === 'send') outbound.push(this.outbound(run, effect.to, effect.message));
      if (effect.kind === 'setTimer') this.arm(run, 'retry', effect.afterMs);
    }
    await context.with(run.trace.context(parent), () => this.publish(txnId, outbound, decided !== undefined));
    if (input.type === 'begin') {
      this.emit(run, { type: 'prepareSent', participants: run.state.membership.rms });
      await this.reach('leader-after-prepare-sent', txnId);
    }
    if (input.type === 'takeover') this.emit(run, { type: 'recovered', decided: false });
    if (input.type === 'phase2b' && !run.state.decision) await this.reach('leader-after-some-phase2b', txnId);
    if (decided) this.arm(run, 'resend', this.config.resendIntervalMs);
  }

  /** Newly chosen instances become the participants' votes in the shared log, for the API. */
  private async recordChosen(run: LeaderRun): Promise<void> {
    const votes: { rm: string; vote: 'YES' | 'NO' }[] = [];
    for (const [rm, value] of Object.entries(run.state.learner.chosen)) {
      if (run.recorded.has(rm)) continue;
      run.recorded.add(rm);
      // An Aborted chosen by a leader for a participant that never voted is no vote of its own.
      if (value === 'Aborted' && !votedAborted(run, rm) && !chosenInBallotZero(run, rm)) continue;
      votes.push({ rm, vote: value === 'Prepared' ? 'YES' : 'NO' });
    }
    await Promise.all(votes.map(({ rm, vote }) => this.txnLog.appendVote(run.txnId, rm, vote, vote === 'NO' ? (run.reasons.get(rm) ?? 'voted Aborted') : undefined)));
    for (const { rm, vote } of votes) this.emit(run, { type: 'voted', participant: rm, vote });
  }

  private async recordDecision(run: LeaderRun, decision: Decision, parent: ReturnType<typeof contextForTransaction>, votes: Promise<void>): Promise<void> {
    const reason = decisionReason(run, decision);
    const attributes = { ...run.trace.attributes, [ATTR_TXN_DECISION]: decision };
    const [logged] = await Promise.all([
      inSpan('decision-log append decision', run.trace.context(parent), attributes, () => this.txnLog.appendDecision(run.txnId, decision, reason)),
      // Who learned it is evidence, true whatever the log says; it never waits for the decision row.
      this.log.recordDecision(run.txnId, decision, this.config.coordinatorId),
      votes,
    ]);
    // Every leader reads the outcome off the same chosen values (tcConsistent); a different
    // logged decision means a broken invariant, and nothing may be sent on top of it.
    if (logged !== decision) {
      this.drop(run.txnId);
      throw new Error(`invariant violated: learned ${decision} but the log holds ${logged}; this replica stops acting on the transaction`);
    }
    run.trace.decided(decision, parent);
    this.emit(run, { type: 'decided', decision, reason });
    this.waiters.notify(run.txnId, decision);
    await this.reach('leader-after-decision', run.txnId);
  }

  /** Re-sends the decision to participants that have not acknowledged it, until all have. */
  private async resend(txnId: string): Promise<void> {
    const run = this.runs.get(txnId);
    if (!run || this.stopping || !run.state.decision) return;
    const txn = await this.txnLog.findById(txnId);
    if (!txn || txn.completedAt) return this.drop(txnId);
    const unacked = txn.participants.filter((p) => p.ackedAt === null).map((p) => p.name);
    if (unacked.length === 0) {
      // Acks that came before the decision was logged could not complete it; this does.
      if (await this.log.complete(txnId)) this.emit(run, { type: 'completed' });
      return this.drop(txnId);
    }
    const decision = run.state.decision;
    // A resend belongs to the commit phase, whatever step armed its timer.
    await context.with(run.trace.context(), () => this.publish(txnId, unacked.map((rm) => this.outbound(run, rm, { type: 'Outcome', txnId, decision }))));
    this.arm(run, 'resend', this.config.resendIntervalMs);
  }

  private outbound(run: LeaderRun, to: string, message: PaxosCommitMessage): OutboundMessage {
    const me = this.config.coordinatorId;
    const traceparent = activeTraceparent() ?? run.traceContext;
    const headers = traceparent ? { [HEADER_TRACEPARENT]: traceparent } : undefined;
    const participantTopic = (): string => this.registry.topicOf(to) ?? this.topics.participant(to);
    let envelope: Envelope;
    switch (message.type) {
      case 'Prepare':
        envelope = {
          v: 1,
          type: 'PREPARE',
          txnId: run.txnId,
          protocol: PAXOS_COMMIT,
          from: me,
          epoch: 0,
          sentAt: new Date().toISOString(),
          body: { payload: run.payloads.get(to) ?? null, timeoutMs: run.timeoutMs, membership: message.membership, leader: message.leader },
        };
        return { topic: participantTopic(), envelope, headers };
      case 'Outcome':
        return { topic: participantTopic(), envelope: outcomeEnvelope(run.txnId, message.decision, me), headers };
      case 'phase1a':
      case 'phase2a':
        return { topic: paxosCommitTopicsFor(this.config.topicPrefix).acceptor(to), envelope: phaseEnvelope(message, me), headers };
      default:
        throw new Error(`a leader does not send ${message.type}`);
    }
  }

  private async publish(txnId: string, outbound: OutboundMessage[], outcomes = false): Promise<void> {
    if (outcomes && outbound.length > 1 && this.failpoints.isEnabled('after-some-decisions-sent')) {
      // The fault tests stop this leader after its outcome reached the first participant only.
      await this.publish(txnId, outbound.slice(0, 1));
      await this.reach('after-some-decisions-sent', txnId);
    }
    try {
      await this.publisher.publish(outbound);
    } catch (error) {
      // Lost phase messages end in a retry with a higher ballot; lost outcomes are re-sent.
      this.logger.warn(`transaction ${txnId}: sending ${outbound.length} message(s) failed: ${(error as Error).message}`);
    }
  }

  private arm(run: LeaderRun, timer: LeaderTimer, afterMs: number): void {
    clearTimeout(run.timers.get(timer));
    const fire = timer === 'resend' ? () => this.queue.run(run.txnId, () => this.resend(run.txnId)) : () => this.retry(run);
    const failed = (error: Error): void => {
      this.logger.warn(`transaction ${run.txnId}: ${timer} failed: ${error.message}`);
      this.rearm(run.txnId);
    };
    const handle = setTimeout(() => void fire().catch(failed), afterMs);
    handle.unref();
    run.timers.set(timer, handle);
  }

  /** A stalled ballot is retried only by the trusted leader; others wait, or let go once another runs it. */
  private async retry(run: LeaderRun): Promise<void> {
    if (run.state.decision || this.runs.get(run.txnId) !== run) return;
    if (this.detector.isLeader()) {
      const cause = run.state.phase === 'listening' ? 'prepare timed out' : 'ballot stalled';
      return this.dispatch(run.txnId, { type: 'timer', timer: 'retry', cause });
    }
    const current = await this.log.findRun(run.txnId);
    if (current && current.leader !== this.config.coordinatorId) return this.drop(run.txnId);
    this.arm(run, 'retry', this.config.paxosCommit?.retryIntervalMs ?? 1000);
  }

  private leaderConfig(run: LeaderRun): LeaderConfig {
    // A transaction begun late (handed over, or found by a scan) gets only what is left of its timeout.
    const prepareTimeoutMs = Math.max(1, (this.deadlines.get(run.txnId) ?? performance.now() + run.timeoutMs) - performance.now());
    return { prepareTimeoutMs, retryIntervalMs: this.config.paxosCommit?.retryIntervalMs ?? 1000 };
  }

  private acceptors(): readonly string[] {
    return this.config.paxosCommit?.acceptors ?? [this.config.coordinatorId];
  }

  private reach(point: Failpoint, txnId: string): Promise<void> {
    return this.failpoints.reach(point, txnId);
  }

  private emit(run: LeaderRun, fact: TransactionFact): void {
    this.events.emitFact(fact, { txnId: run.txnId, protocol: PAXOS_COMMIT, startedAt: run.startedAt });
  }
}
