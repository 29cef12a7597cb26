/**
 * Runs the pure 3PC coordinator core (protocols/three-phase/coordinator.ts) against the
 * decision log, Kafka and timers, as TwoPhaseDriver does for 2PC: every step's records are
 * durable before any of its messages leave, and one input at a time reaches each transaction.
 *
 * The core's `ackTimeout` means "the participants that did not acknowledge PreCommit have
 * crashed", so it only reaches the core once the failure detector vouches for it: the
 * participant registry must show each silent participant restarted since the transaction
 * began, or silent for participantTtlMs while others kept announcing. That is 3PC's synchrony
 * assumption (docs/protocols.md): a live participant announces, and answers, within bounded
 * time. A coordinator that cannot decide within the time it promised in PRECOMMIT steps down
 * into doubt, because the participants are by then entitled to finish without it.
 */
import { Injectable } from '@nestjs/common';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { assertNever } from '../../protocols/common/assert';
import { Failpoint } from '../../common/failpoints';
import { Decision, orderForDurability } from '../../protocols/common/effects';
import {
  CoordinatorEffect,
  CoordinatorState,
  TmConfig,
  TmRecord,
  decisionOf,
  initialCoordinatorState,
  restoreCoordinator,
  step,
} from '../../protocols/three-phase/coordinator';
import { ThreePhaseMessage } from '../../protocols/three-phase/messages';
import { ATTR_TXN_DECISION, contextForTransaction, inSpan } from '../../telemetry/txn-tracing';
import { Envelope } from '../../transport/kafka/envelope';
import { OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { CoreInput, outboundOf, toCoreInput } from './three-phase.codec';
import { DriverDependencies, DriverOutcome, ProtocolDriverBase, RunningTransaction, runningFromLog } from '../protocol-driver.base';
import { ArmTimer } from '../../runtime/transaction-runtime';
import { TransactionFact } from '../../telemetry/transaction-events';

/** The driver's own inputs: the core's, and the failure detector's look at silent participants. */
type ThreePhaseInput = CoreInput | { readonly type: 'checkAckTimeout' };
type Running = RunningTransaction<CoordinatorState>;
type Outcome = DriverOutcome<ThreePhaseInput>;
/** A write the driver adds to a step for operators, and the event it stands for. */
type Note = { readonly write: () => Promise<void>; readonly fact?: TransactionFact };

/** What the failure detector needs to remember about a transaction beyond the core's state. */
interface Watch {
  /** Each participant's announced process when the transaction began. */
  readonly instances: ReadonlyMap<string, string | undefined>;
  /**
   * Begun by this process rather than adopted from the log. Failpoints stop only these, so
   * that a test's coordinator never hangs while finishing older transactions at start.
   */
  readonly begunHere: boolean;
  /** When the promise made in PRECOMMIT runs out. */
  preCommitDeadline?: number;
}

const COORDINATOR_ROLE = { role: 'coordinator' } as const;

@Injectable()
export class ThreePhaseDriver extends ProtocolDriverBase<CoordinatorState, ThreePhaseInput> {
  readonly protocol = '3pc';
  private readonly watches = new Map<string, Watch>();

  constructor(deps: DriverDependencies) {
    super(deps);
  }

  begin(txn: TransactionEntity): Promise<void> {
    const running = runningFromLog(txn, '3pc', initialCoordinatorState(txn.id, txn.participants.map((p) => p.name)));
    this.watches.set(txn.id, { instances: new Map(running.state.rms.map((rm) => [rm, this.registry.instanceOf(rm)])), begunHere: true });
    this.startRunning(running);
    return this.dispatch(txn.id, { type: 'begin' });
  }

  /**
   * Resumes a transaction from the log: a logged decision is re-sent; a logged PreCommit
   * without a decision leaves this coordinator in doubt, asking the participants (who may
   * have finished by themselves); with nothing logged nobody can be pre-committed, so it aborts.
   */
  adopt(txn: TransactionEntity): Promise<void> {
    if (this.runtime.has(txn.id)) return Promise.resolve();
    const records: TmRecord[] = [];
    if (txn.precommittedAt) records.push({ type: 'precommit' });
    if (txn.decision) records.push({ type: 'decision', decision: txn.decision });
    const rms = txn.participants.map((p) => p.name);
    const restored = restoreCoordinator(txn.id, rms, records);
    const acked = txn.participants.filter((p) => p.ackedAt !== null).map((p) => p.name);
    this.watches.set(txn.id, { instances: new Map(), begunHere: false });
    this.startRunning(runningFromLog(txn, '3pc', { ...restored, acked }));
    return this.dispatch(txn.id, { type: 'recover', why: 'coordinator recovered without a PreCommit in the log: nobody can have committed' });
  }

  async deliver(envelope: Envelope): Promise<boolean> {
    const input = toCoreInput(envelope);
    if (input === undefined) return false;
    if (input === null) return true;
    if (this.runtime.has(envelope.txnId)) await this.dispatch(envelope.txnId, input);
    else if (input.type === 'vote' || input.type === 'decisionReq') await this.answerFromLog(envelope.txnId, envelope.from, envelope.epoch, COORDINATOR_ROLE);
    return true;
  }

  /** Aborting is the coordinator's to do only while votes are outstanding: nobody is pre-committed yet. */
  requestAbort(txnId: string, reason: string): Promise<void> {
    const txn = this.running(txnId);
    if (txn?.state.tmState !== 'waitingVotes') return Promise.resolve();
    return this.dispatch(txnId, { type: 'timer', timer: 'voteTimeout', why: reason });
  }

  protected participantDown(rm: string): void {
    for (const [txnId, txn] of this.runtime.running()) {
      if (!txn.state.rms.includes(rm)) continue;
      if (txn.state.tmState === 'waitingVotes' && !txn.state.tmPrepared.includes(rm)) {
        void this.dispatch(txnId, { type: 'timer', timer: 'voteTimeout', why: `participant ${rm} stopped announcing` });
      } else if (txn.state.tmState === 'precommitting') {
        void this.dispatch(txnId, { type: 'checkAckTimeout' });
      }
    }
  }

  protected onFinish(txnId: string, txn: Running): void {
    this.watches.delete(txnId);
    super.onFinish(txnId, txn);
  }

  protected run(txn: Running, input: ThreePhaseInput): Promise<Outcome | undefined> {
    if (input.type === 'checkAckTimeout') return this.checkAckTimeout(txn);
    return this.runCore(txn, input);
  }

  private async runCore(txn: Running, input: CoreInput): Promise<Outcome> {
    const txnId = txn.state.txnId;
    const parent = contextForTransaction(txn.traceContext);
    const before = txn.state;
    const result = step(before, input, this.tmConfig(txn));
    const { persists, rest } = orderForDurability<CoordinatorEffect>(result.effects);
    if (input.type === 'begin') {
      txn.trace.startPhase('prepare', parent);
      await this.reach(txn, 'after-transaction-logged');
    }
    if (input.type === 'recover') {
      const logged = decisionOf(before);
      txn.trace.startPhase(phaseOf(before), parent, { 'txn.recovered': true, ...(logged ? { [ATTR_TXN_DECISION]: logged } : {}) });
    }
    // The durability rule: the step's records are in the log before anything below runs. The
    // driver's own notes (votes, acks) ride in the same group commit; nothing waits on them.
    const notes = this.notes(txn, input, result.state);
    const durable = await Promise.all(persists.map((effect) => effect.kind === 'persist' && this.persist(txn, effect.record, input)));
    await Promise.all(notes.map((note) => note.write()));
    if (durable.some((ok) => ok === false)) {
      this.logger.warn(`transaction ${txnId}: a newer owner holds it; stopping here without sending`);
      return { finished: true };
    }
    const adopted = durable.find((r): r is Decision => typeof r === 'string');
    if (adopted) return this.adoptLogged(txn, adopted);
    txn.state = result.state;
    for (const note of notes) if (note.fact) this.emit(txn, note.fact);
    const logged = persists.flatMap((e) => (e.kind === 'persist' ? [e.record.type] : []));
    if (logged.includes('precommit')) await this.preCommitLogged(txn, parent);
    const decision = decisionOf(txn.state);
    if (decision && logged.includes('decision')) {
      this.emit(txn, { type: 'decided', decision, reason: this.reasonFor(input, decision) });
      txn.trace.decided(decision, parent);
      await this.reach(txn, 'after-decision-logged');
    }
    const outbound: OutboundMessage[] = [];
    const timers: ArmTimer<ThreePhaseInput>[] = [];
    for (const effect of rest) this.carryOut(txn, effect, outbound, timers);
    const partial = logged.includes('decision') ? 'after-some-decisions-sent' : logged.includes('precommit') ? 'after-some-precommits-sent' : undefined;
    const halfway = partial && this.watches.get(txnId)?.begunHere ? partial : undefined;
    const finished = decision !== undefined && txn.state.rms.every((rm) => txn.state.acked.includes(rm));
    if (finished) await this.complete(txn);
    return this.outcome(txn, parent, { outbound, timers, partial: halfway, then: () => this.afterSend(txn, input), finished });
  }

  /**
   * The log already holds a decision other than this step's (a stale owner wrote it first):
   * the logged one is the outcome, and this coordinator carries it out as a recovering one would.
   */
  private adoptLogged(txn: Running, logged: Decision): Promise<Outcome> {
    this.logger.warn(`transaction ${txn.state.txnId}: the log already holds ${logged}; carrying that out`);
    txn.state = { ...restoreCoordinator(txn.state.txnId, txn.state.rms, [{ type: 'precommit' }, { type: 'decision', decision: logged }]), acked: txn.state.acked };
    return this.runCore(txn, { type: 'recover' });
  }

  private async preCommitLogged(txn: Running, parent: ReturnType<typeof contextForTransaction>): Promise<void> {
    const watch = this.watches.get(txn.state.txnId);
    if (watch) watch.preCommitDeadline = this.clock.now() + this.preCommitPromiseMs();
    this.emit(txn, { type: 'preCommitted' });
    txn.trace.startPhase('precommit', parent);
    await this.reach(txn, 'after-precommit-logged');
  }

  private async afterSend(txn: Running, input: CoreInput): Promise<void> {
    const { tmState, tmPrepared } = txn.state;
    if (input.type === 'begin') {
      this.emit(txn, { type: 'prepareSent', participants: txn.state.rms });
      await this.reach(txn, 'after-prepare-sent');
    }
    if (input.type === 'vote' && tmState === 'waitingVotes' && tmPrepared.length > 0) await this.reach(txn, 'after-votes');
    if (input.type === 'recover') this.emit(txn, { type: 'recovered', decided: decisionOf(txn.state) !== undefined });
  }

  private async reach(txn: Running, point: Failpoint): Promise<void> {
    if (this.watches.get(txn.state.txnId)?.begunHere) await this.failpoints.reach(point, txn.state.txnId);
  }

  private async complete(txn: Running): Promise<void> {
    await this.log.markComplete(txn.state.txnId);
    this.emit(txn, { type: 'completed' });
  }

  /**
   * The failure detector's verdict on the participants that did not acknowledge PreCommit.
   * Only a verdict of "all crashed" lets the core commit on `ackTimeout`; otherwise look again
   * shortly, and once the promise made in PRECOMMIT has run out, step down into doubt.
   */
  private async checkAckTimeout(txn: Running): Promise<Outcome | undefined> {
    if (txn.state.tmState !== 'precommitting') return undefined;
    const silent = txn.state.rms.filter((rm) => !txn.state.preCommitAcked.includes(rm));
    const crashed = await this.crashed(txn, silent);
    if (silent.every((rm) => crashed.has(rm))) {
      return this.runCore(txn, { type: 'timer', timer: 'ackTimeout', why: `every participant prepared; ${silent.join(', ')} crashed before acknowledging PreCommit` });
    }
    const deadline = this.watches.get(txn.state.txnId)?.preCommitDeadline ?? 0;
    if (this.clock.now() < deadline) return { timers: [{ name: 'ackTimeout', afterMs: this.recheckMs(), input: { type: 'checkAckTimeout' } }] };
    // The participants may already be running the termination protocol without us: from now
    // on this coordinator only asks, exactly as if it had crashed and restarted.
    this.logger.warn(`transaction ${txn.state.txnId}: ${silent.join(', ')} neither acknowledged PreCommit nor failed in time; asking the participants`);
    txn.state = restoreCoordinator(txn.state.txnId, txn.state.rms, [{ type: 'precommit' }]);
    return this.runCore(txn, { type: 'recover' });
  }

  /**
   * The participants among `rms` the failure detector vouches have crashed: those that
   * restarted since the transaction began, and those silent for a TTL while the registry kept
   * hearing others after that. The second condition keeps a registry that has gone stale
   * (nobody consuming announcements, say during a rebalance) from declaring everyone dead.
   */
  private async crashed(txn: Running, rms: readonly string[]): Promise<Set<string>> {
    const instances = this.watches.get(txn.state.txnId)?.instances ?? new Map<string, string | undefined>();
    const registered = await this.registry.list();
    const known = new Map(registered.map((p) => [p.name, p]));
    const newest = Math.max(0, ...registered.map((p) => new Date(p.lastSeenAt).getTime()));
    const ttl = this.config.participantTtlMs;
    return new Set(
      rms.filter((rm) => {
        const now = known.get(rm);
        if (!now) return false;
        const then = instances.get(rm);
        if (then !== undefined && now.instanceId !== then) return true;
        return !now.live && newest >= new Date(now.lastSeenAt).getTime() + ttl;
      }),
    );
  }

  private carryOut(txn: Running, effect: CoordinatorEffect, outbound: OutboundMessage[], timers: ArmTimer<ThreePhaseInput>[]): void {
    switch (effect.kind) {
      case 'persist':
        return;
      case 'send':
        outbound.push(this.toParticipant(txn, effect.to, this.toEnvelope(txn, effect.to, effect.message)));
        return;
      case 'setTimer':
        // ackTimeout goes through the failure detector first; the others reach the core as they are.
        timers.push({ name: effect.timer, afterMs: effect.afterMs, input: effect.timer === 'ackTimeout' ? { type: 'checkAckTimeout' } : { type: 'timer', timer: effect.timer } });
        return;
      case 'decide':
        this.waiters.notify(txn.state.txnId, effect.decision);
        return;
      default:
        assertNever(effect, 'effect');
    }
  }

  /** Returns false when the log says a newer owner holds the transaction, and the logged decision when it differs. */
  private async persist(txn: Running, record: TmRecord, input: CoreInput): Promise<boolean | Decision> {
    const { txnId } = txn.state;
    switch (record.type) {
      case 'precommit':
        return this.log.appendPreCommit(txnId, txn.epoch);
      case 'decision': {
        const attributes = { ...txn.trace.attributes, [ATTR_TXN_DECISION]: record.decision };
        const logged = await inSpan('decision-log append decision', txn.trace.context(), attributes, () =>
          this.log.appendDecisionAtEpoch(txnId, txn.epoch, record.decision, this.reasonFor(input, record.decision)),
        );
        if (logged === null) return false;
        return logged === record.decision ? true : logged;
      }
      default:
        return assertNever(record, 'record');
    }
  }

  /** Facts the core does not log but operators want to see: who voted what, who acknowledged. */
  private notes(txn: Running, input: CoreInput, next: CoordinatorState): Note[] {
    const { txnId } = txn.state;
    const isNew = (now: readonly string[], before: readonly string[], rm: string) => now.includes(rm) && !before.includes(rm);
    switch (input.type) {
      case 'vote': {
        // A duplicate vote, or one after the decision, is not news.
        const fresh = input.vote === 'Prepared' ? isNew(next.tmPrepared, txn.state.tmPrepared, input.rm) : txn.state.tmState === 'waitingVotes' && txn.state.rms.includes(input.rm);
        if (!fresh) return [];
        const vote = input.vote === 'Prepared' ? 'YES' : 'NO';
        const reason = input.vote === 'Aborted' ? input.voteReason : undefined;
        return [{ write: () => this.log.appendVote(txnId, input.rm, vote, reason), fact: { type: 'voted', participant: input.rm, vote } }];
      }
      case 'preCommitAck':
        return isNew(next.preCommitAcked, txn.state.preCommitAcked, input.rm) ? [{ write: () => this.log.appendPreCommitAck(txnId, input.rm) }] : [];
      case 'ack':
        return isNew(next.acked, txn.state.acked, input.rm) ? [{ write: () => this.log.appendAck(txnId, input.rm), fact: { type: 'acked', participant: input.rm } }] : [];
      default:
        return [];
    }
  }

  private reasonFor(input: CoreInput, decision: Decision): string {
    if (input.why) return input.why;
    if (input.type === 'learned') return `participants decided ${decision} without the coordinator (termination protocol)`;
    if (input.type === 'timer' && input.timer === 'voteTimeout') return 'prepare timed out';
    return decision === 'COMMIT' ? 'every participant prepared and acknowledged PreCommit' : 'aborted';
  }

  private toEnvelope(txn: Running, rm: string, message: ThreePhaseMessage): Envelope {
    const content = outboundOf(message, {
      payload: txn.payloads.get(rm) ?? null,
      timeoutMs: txn.timeoutMs,
      participantTtlMs: this.config.participantTtlMs,
      preCommitPromiseMs: this.preCommitPromiseMs(),
    });
    return this.envelope(txn, content);
  }

  private tmConfig(txn: Running): TmConfig {
    return { voteTimeoutMs: txn.timeoutMs, ackTimeoutMs: this.config.precommitAckTimeoutMs, resendIntervalMs: this.config.resendIntervalMs };
  }

  /**
   * How long after PRECOMMIT this coordinator promises to decide: the ack timeout, plus the
   * time the failure detector needs to declare a silent participant gone, plus one look.
   */
  private preCommitPromiseMs(): number {
    return this.config.precommitAckTimeoutMs + this.config.participantTtlMs + this.recheckMs();
  }

  private recheckMs(): number {
    return Math.max(50, Math.min(500, Math.floor(this.config.participantTtlMs / 8)));
  }
}

function phaseOf(state: CoordinatorState): 'prepare' | 'precommit' | 'commit' {
  if (decisionOf(state)) return 'commit';
  return state.tmState === 'inDoubt' ? 'precommit' : 'prepare';
}
