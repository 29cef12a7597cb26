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
import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { context } from '@opentelemetry/api';
import { Failpoint, Failpoints } from '../../common/failpoints';
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
import { LeaderRun, chosenInBallotZero, decisionReason, newRun, votedAborted } from './leader-run';
import { Clock, systemClock } from '../../runtime/ports';
import { RUNTIME_CLOCK } from '../../runtime/runtime.constants';
import { ArmTimer, StepOutcome, TransactionRuntime } from '../../runtime/transaction-runtime';
import { PaxosCommitLog } from './paxos-commit-log';

/** The core's inputs, and the driver's own: re-sending a decided outcome, and a stalled ballot's check. */
type Input = (LeaderInput & { readonly cause?: string }) | { readonly type: 'resend' } | { readonly type: 'retryCheck' };
type Outcome = StepOutcome<Input, OutboundMessage>;

@Injectable()
export class LeaderDriver implements OnApplicationShutdown {
  private readonly logger = new Logger(LeaderDriver.name);
  private readonly runtime: TransactionRuntime<LeaderRun, Input, OutboundMessage>;
  private readonly starting = new Set<string>();
  private readonly failpoints: Failpoints;

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
    @Optional() @Inject(RUNTIME_CLOCK) private readonly clock: Clock = systemClock,
  ) {
    this.failpoints = new Failpoints(config.failpoints);
    this.runtime = new TransactionRuntime<LeaderRun, Input, OutboundMessage>(
      { run: (run, input) => this.run(run, input), onFinish: (run) => run.trace.end() },
      { name: 'transaction', transport: { send: (messages) => this.publisher.publish(messages) }, logger: this.logger, clock },
    );
  }

  onApplicationShutdown(): void {
    this.runtime.stop();
  }

  isRunning(txnId: string): boolean {
    return this.runtime.has(txnId) || this.starting.has(txnId);
  }

  runningCount(): number {
    return this.runtime.size;
  }

  /** Undecided runs still listening for the ballot-0 vote of `rm`. */
  waitingFor(rm: string): string[] {
    return [...this.runtime.running()]
      .map(([, run]) => run)
      .filter((r) => !r.state.decision && r.state.phase === 'listening' && r.state.membership.rms.includes(rm) && r.state.learner.chosen[rm] === undefined)
      .map((r) => r.txnId);
  }

  /**
   * Runs an undecided transaction here: begins it if no leader has, otherwise takes it over
   * with a ballot above every round this replica has used for it.
   */
  async start(txn: TransactionEntity): Promise<void> {
    if (this.isRunning(txn.id) || this.runtime.isStopping()) return;
    this.starting.add(txn.id);
    try {
      const me = this.config.coordinatorId;
      const proposed: Membership = { rms: txn.participants.map((p) => p.name), acceptors: this.acceptors() };
      const claim = await this.log.claimRun(txn.id, proposed, me);
      const membership = claim.began ? proposed : claim.membership;
      // Restored even for a begin: a round used before a restart must never be used again.
      const state = restoreLeader(txn.id, me, membership, await this.store.leaderRecords(txn.id));
      // The age comes from the database that stamped created_at, never from comparing clocks.
      const ageMs = (await this.log.ageMs(txn.id)) ?? 0;
      const run = newRun(txn, state);
      run.prepareDeadline = this.clock.now() + txn.timeoutMs - ageMs;
      this.runtime.start(txn.id, run);
      if (!claim.began && claim.previousLeader !== me) {
        this.logger.log(`taking over transaction ${txn.id} from leader ${claim.previousLeader}`);
        this.emit(run, { type: 'takenOver', fromOwner: claim.previousLeader, epoch: txn.epoch });
      }
      void this.runtime.submit(txn.id, claim.began ? { type: 'begin' } : { type: 'takeover', cause: 'leader takeover' });
    } finally {
      this.starting.delete(txn.id);
    }
  }

  /** Finishes a transaction whose decision is logged: tells every participant that has not acknowledged it. */
  finishDecided(txn: TransactionEntity): void {
    if (this.isRunning(txn.id) || !txn.decision || this.runtime.isStopping()) return;
    const membership: Membership = { rms: txn.participants.map((p) => p.name), acceptors: this.acceptors() };
    const state = { ...restoreLeader(txn.id, this.config.coordinatorId, membership, []), decision: txn.decision };
    const run = newRun(txn, state);
    this.runtime.start(txn.id, run);
    run.trace.startPhase('commit', contextForTransaction(txn.traceContext), { 'txn.recovered': true, [ATTR_TXN_DECISION]: txn.decision });
    this.emit(run, { type: 'recovered', decided: true });
    void this.runtime.submit(txn.id, { type: 'resend' });
  }

  /** A PHASE1B or PHASE2B for this leader. */
  deliver(envelope: EnvelopeOf<'PHASE1B' | 'PHASE2B'>): void {
    const message = phaseMessage(envelope);
    const run = this.runtime.get(envelope.txnId);
    if (!run || !message || (message.type !== 'phase1b' && message.type !== 'phase2b')) return;
    if (envelope.type === 'PHASE2B') for (const [rm, reason] of reasonsOf(envelope)) run.reasons.set(rm, reason);
    void this.runtime.submit(envelope.txnId, message.type === 'phase1b' ? { type: 'phase1b', message } : { type: 'phase2b', message });
  }

  /** A participant in doubt asks; a decided run answers it. */
  query(txnId: string, rm: string): void {
    if (this.runtime.has(txnId)) void this.runtime.submit(txnId, { type: 'query', rm });
  }

  /** Starts a higher ballot now instead of waiting (a participant went away, an operator asked). */
  ballotNow(txnId: string, cause: string): void {
    const run = this.runtime.get(txnId);
    if (run && !run.state.decision) void this.runtime.submit(txnId, { type: 'timer', timer: 'retry', cause });
  }

  /** Stops running a transaction another leader now runs. */
  drop(txnId: string): void {
    this.runtime.finish(txnId);
  }

  private run(run: LeaderRun, input: Input): Promise<Outcome | undefined> {
    if (input.type === 'resend') return this.resend(run);
    if (input.type === 'retryCheck') return this.retry(run);
    return this.stepCore(run, input);
  }

  private async stepCore(run: LeaderRun, input: LeaderInput & { readonly cause?: string }): Promise<Outcome> {
    const txnId = run.txnId;
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
    if (decided?.kind === 'decide') {
      if (!(await this.recordDecision(run, decided.decision, parent, votes))) return { finished: true };
    } else await votes;
    const outbound: OutboundMessage[] = [];
    const timers: ArmTimer<Input>[] = [];
    for (const effect of rest) {
      if (effect.kind === 'send') outbound.push(this.outbound(run, effect.to, effect.message));
      if (effect.kind === 'setTimer') timers.push({ name: 'retry', afterMs: this.retryDelay(run, input, effect.afterMs), input: { type: 'retryCheck' } });
    }
    if (decided) timers.push({ name: 'resend', afterMs: this.config.resendIntervalMs, input: { type: 'resend' } });
    const sent = this.sending(txnId, outbound, decided !== undefined);
    return {
      ...sent,
      timers,
      around: (send) => context.with(run.trace.context(parent), send),
      afterSend: async () => {
        await sent.afterSend?.();
        if (input.type === 'begin') {
          this.emit(run, { type: 'prepareSent', participants: run.state.membership.rms });
          await this.reach('leader-after-prepare-sent', txnId);
        }
        if (input.type === 'takeover') this.emit(run, { type: 'recovered', decided: false });
        if (input.type === 'phase2b' && !run.state.decision) await this.reach('leader-after-some-phase2b', txnId);
      },
    };
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

  /** False when the log holds another decision: this replica then stops acting on the transaction. */
  private async recordDecision(run: LeaderRun, decision: Decision, parent: ReturnType<typeof contextForTransaction>, votes: Promise<void>): Promise<boolean> {
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
      this.logger.error(`transaction ${run.txnId}: invariant violated: learned ${decision} but the log holds ${logged}; this replica stops acting on the transaction`);
      return false;
    }
    run.trace.decided(decision, parent);
    this.emit(run, { type: 'decided', decision, reason });
    this.waiters.notify(run.txnId, decision);
    await this.reach('leader-after-decision', run.txnId);
    return true;
  }

  /** Re-sends the decision to participants that have not acknowledged it, until all have. */
  private async resend(run: LeaderRun): Promise<Outcome | undefined> {
    const txnId = run.txnId;
    if (!run.state.decision) return undefined;
    const txn = await this.txnLog.findById(txnId);
    if (!txn || txn.completedAt) return { finished: true };
    const unacked = txn.participants.filter((p) => p.ackedAt === null).map((p) => p.name);
    if (unacked.length === 0) {
      // Acks that came before the decision was logged could not complete it; this does.
      if (await this.log.complete(txnId)) this.emit(run, { type: 'completed' });
      return { finished: true };
    }
    const decision = run.state.decision;
    return {
      messages: unacked.map((rm) => this.outbound(run, rm, { type: 'Outcome', txnId, decision })),
      // A resend belongs to the commit phase, whatever step armed its timer.
      around: (send) => context.with(run.trace.context(), send),
      timers: [{ name: 'resend', afterMs: this.config.resendIntervalMs, input: { type: 'resend' } }],
    };
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

  /** What a step sends; the fault tests stop this leader after its outcome reached the first participant only. */
  private sending(txnId: string, outbound: OutboundMessage[], outcomes: boolean): Pick<Outcome, 'messages' | 'afterSend'> {
    if (!outcomes || outbound.length <= 1 || !this.failpoints.isEnabled('after-some-decisions-sent')) return { messages: outbound };
    return { messages: outbound.slice(0, 1), afterSend: () => this.reach('after-some-decisions-sent', txnId) };
  }

  /**
   * How long a ballot may stall before the next. Each ballot this run starts without deciding
   * doubles the wait (up to 8x) and every wait is jittered, so two replicas that both believe
   * they lead (a detector still settling) stop pre-empting each other in lockstep and one
   * ballot gets through: safety never needed this, progress does.
   */
  private retryDelay(run: LeaderRun, input: Input, afterMs: number): number {
    // The prepare window after a begin is the client's timeout: it is kept exactly.
    if (input.type !== 'timer' && input.type !== 'takeover') return afterMs;
    run.ballots++;
    const backoff = afterMs * 2 ** Math.min(Math.max(run.ballots - 1, 0), 3);
    return Math.round(backoff * (0.75 + 0.5 * Math.random()));
  }

  /** A stalled ballot is retried only by the trusted leader; others wait, or let go once another runs it. */
  private async retry(run: LeaderRun): Promise<Outcome | undefined> {
    if (run.state.decision) return undefined;
    if (this.detector.isLeader()) {
      const cause = run.state.phase === 'listening' ? 'prepare timed out' : 'ballot stalled';
      return this.stepCore(run, { type: 'timer', timer: 'retry', cause });
    }
    const current = await this.log.findRun(run.txnId);
    if (current && current.leader !== this.config.coordinatorId) return { finished: true };
    return { timers: [{ name: 'retry', afterMs: this.config.paxosCommit?.retryIntervalMs ?? 1000, input: { type: 'retryCheck' } }] };
  }

  private leaderConfig(run: LeaderRun): LeaderConfig {
    // A transaction begun late (handed over, or found by a scan) gets only what is left of its timeout.
    const prepareTimeoutMs = Math.max(1, (run.prepareDeadline ?? this.clock.now() + run.timeoutMs) - this.clock.now());
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
