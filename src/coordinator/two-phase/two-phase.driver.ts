/**
 * The 2PC coordinator role: the pure core (protocols/two-phase/coordinator.ts), its storage
 * mapping onto the decision log (active-transaction.ts) and its wire codec. Each step's
 * records are durable before `run` resolves; the runtime then sends the step's messages and
 * arms its timers. A decision write that finds another decision logged adopts the logged one.
 */
import { Injectable } from '@nestjs/common';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { assertNever } from '../../protocols/common/assert';
import { Decision, orderForDurability } from '../../protocols/common/effects';
import { CoordinatorEffect, CoordinatorInput, CoordinatorState, TmConfig, TmRecord, decisionOf, initialCoordinatorState, step } from '../../protocols/two-phase/coordinator';
import { TmToRm } from '../../protocols/two-phase/messages';
import { Envelope } from '../../transport/kafka/envelope';
import { OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { ATTR_TXN_DECISION, contextForTransaction, inSpan } from '../../telemetry/txn-tracing';
import { ActiveTransaction, activeFromLog } from './two-phase-log.mapping';
import { DriverDependencies, DriverOutcome, ProtocolDriverBase } from '../protocol-driver.base';
import { ArmTimer } from '../../runtime/transaction-runtime';
import { toCoordinatorInput } from './two-phase.codec';

@Injectable()
export class TwoPhaseDriver extends ProtocolDriverBase<CoordinatorState, CoordinatorInput> {
  readonly protocol = '2pc';

  constructor(deps: DriverDependencies) {
    super(deps);
  }

  /** Starts a transaction that the API has just logged. */
  begin(txn: TransactionEntity): Promise<void> {
    const active = activeFromLog(txn);
    // A new transaction starts from the core's initial state; `begin` sends the prepares.
    active.state = initialCoordinatorState(txn.id, active.state.rms);
    this.startRunning(active);
    return this.dispatch(txn.id, { type: 'begin' });
  }

  /**
   * Resumes a transaction this replica has just taken over (or found unfinished after a
   * restart): it re-sends a logged decision, and presumed abort ends an undecided one.
   */
  adopt(txn: TransactionEntity): Promise<void> {
    if (!this.startRunning(activeFromLog(txn))) return Promise.resolve();
    return this.dispatch(txn.id, { type: 'recover' });
  }

  /** A message from a participant. Messages about transactions not running here are answered from the log. */
  async deliver(envelope: Envelope): Promise<boolean> {
    const input = toCoordinatorInput(envelope);
    if (!input) return false;
    if (this.runtime.has(envelope.txnId)) await this.dispatch(envelope.txnId, input);
    else if (input.type === 'vote' || input.type === 'query') await this.answerFromLog(envelope.txnId, input.rm, envelope.epoch);
    return true;
  }

  requestAbort(txnId: string, reason: string): Promise<void> {
    return this.runtime.has(txnId) ? this.dispatch(txnId, { type: 'abortRequested', reason }) : Promise.resolve();
  }

  protected participantDown(rm: string): void {
    for (const [txnId, txn] of this.runtime.running()) {
      if (txn.state.rms.includes(rm) && decisionOf(txn.state) === undefined) void this.dispatch(txnId, { type: 'participantDown', rm });
    }
  }

  protected async run(txn: ActiveTransaction, input: CoordinatorInput): Promise<DriverOutcome<CoordinatorInput>> {
    const txnId = txn.state.txnId;
    const parent = contextForTransaction(txn.traceContext);
    const result = step(txn.state, input, this.tmConfig(txn));
    const { persists, rest } = orderForDurability<CoordinatorEffect>(result.effects);
    if (input.type === 'begin') {
      txn.trace.startPhase('prepare', parent);
      await this.failpoints.reach('after-transaction-logged', txnId);
    }
    if (input.type === 'recover') {
      const logged = decisionOf(txn.state);
      txn.trace.startPhase(logged ? 'commit' : 'prepare', parent, { 'txn.recovered': true, ...(logged ? { [ATTR_TXN_DECISION]: logged } : {}) });
    }
    // The durability rule: every record of this step is in the log before anything below runs.
    const logged = await this.persistAll(txn, persists);
    if (logged !== undefined) return this.adoptLogged(txn, logged);
    txn.state = result.state;
    const decision = decisionOf(txn.state);
    const decidedNow = decision !== undefined && persists.some((e) => e.kind === 'persist' && e.record.type === 'decision');
    if (decidedNow) {
      txn.trace.decided(decision, parent);
      await this.failpoints.reach('after-decision-logged', txnId);
    }
    for (const effect of persists) if (effect.kind === 'persist') this.emitPersisted(txn, effect.record);
    const outbound: OutboundMessage[] = [];
    const timers: ArmTimer<CoordinatorInput>[] = [];
    for (const effect of rest) this.carryOut(txn, effect, outbound, timers);
    return this.outcome(txn, parent, {
      outbound,
      timers,
      partial: decidedNow ? 'after-some-decisions-sent' : undefined,
      then: () => this.afterSend(txn, input, decision),
      finished: txn.state.done,
    });
  }

  private async afterSend(txn: ActiveTransaction, input: CoordinatorInput, decision: Decision | undefined): Promise<void> {
    const txnId = txn.state.txnId;
    if (input.type === 'begin') {
      this.emit(txn, { type: 'prepareSent', participants: txn.state.rms });
      await this.failpoints.reach('after-prepare-sent', txnId);
    }
    if (input.type === 'vote' && decision === undefined && txn.state.tmPrepared.length > 0) await this.failpoints.reach('after-votes', txnId);
    if (input.type === 'recover') this.emit(txn, { type: 'recovered', decided: decisionOf(txn.state) !== undefined });
  }

  /** Writes a step's records together; returns the logged decision when it differs from the step's. */
  private async persistAll(txn: ActiveTransaction, persists: readonly CoordinatorEffect[]): Promise<Decision | undefined> {
    const results = await Promise.all(persists.map((effect) => (effect.kind === 'persist' ? this.persist(txn, effect.record) : undefined)));
    return results.find((r): r is Decision => r !== undefined);
  }

  /**
   * The log already holds another decision (a stale owner, or an operator, wrote it first).
   * The log is the truth: this transaction now carries out the logged decision, from its
   * logged records, as a recovering TM would.
   */
  private async adoptLogged(txn: ActiveTransaction, logged: Decision): Promise<DriverOutcome<CoordinatorInput>> {
    this.logger.warn(`transaction ${txn.state.txnId}: the log already holds ${logged}; carrying that out`);
    const entry = await this.log.findById(txn.state.txnId);
    txn.state = entry ? activeFromLog(entry).state : { ...txn.state, tmState: logged === 'COMMIT' ? 'committed' : 'aborted' };
    return this.run(txn, { type: 'recover' });
  }

  private carryOut(txn: ActiveTransaction, effect: CoordinatorEffect, outbound: OutboundMessage[], timers: ArmTimer<CoordinatorInput>[]): void {
    switch (effect.kind) {
      case 'persist':
        return;
      case 'send':
        outbound.push(this.outbound(txn, effect.to, effect.message));
        return;
      case 'setTimer':
        timers.push({ name: effect.timer, afterMs: effect.afterMs, input: { type: 'timer', timer: effect.timer } });
        return;
      case 'decide':
        this.waiters.notify(txn.state.txnId, effect.decision);
        return;
      default:
        assertNever(effect, 'effect');
    }
  }

  private emitPersisted(txn: ActiveTransaction, record: TmRecord): void {
    switch (record.type) {
      case 'vote':
        return this.emit(txn, { type: 'voted', participant: record.rm, vote: record.vote === 'Prepared' ? 'YES' : 'NO' });
      case 'decision':
        return this.emit(txn, { type: 'decided', decision: record.decision, reason: record.reason });
      case 'ack':
        return this.emit(txn, { type: 'acked', participant: record.rm });
      case 'complete':
        return this.emit(txn, { type: 'completed' });
      default:
        assertNever(record, 'record');
    }
  }

  /** Returns the logged decision when the log holds a different one than the record. */
  private async persist(txn: ActiveTransaction, record: TmRecord): Promise<Decision | undefined> {
    const txnId = txn.state.txnId;
    switch (record.type) {
      case 'vote':
        await this.log.appendVote(txnId, record.rm, record.vote === 'Prepared' ? 'YES' : 'NO', record.reason);
        return undefined;
      case 'decision': {
        const attributes = { ...txn.trace.attributes, [ATTR_TXN_DECISION]: record.decision };
        const logged = await inSpan('decision-log append decision', txn.trace.context(), attributes, () =>
          this.log.appendDecision(txnId, record.decision, record.reason),
        );
        return logged === record.decision ? undefined : logged;
      }
      case 'ack':
        await this.log.appendAck(txnId, record.rm);
        return undefined;
      case 'complete':
        await this.log.markComplete(txnId);
        return undefined;
      default:
        return assertNever(record, 'record');
    }
  }

  private outbound(txn: ActiveTransaction, rm: string, message: TmToRm): OutboundMessage {
    const envelope =
      message.type === 'Prepare'
        ? this.envelope(txn, { type: 'PREPARE', body: { payload: txn.payloads.get(rm) ?? null, timeoutMs: txn.timeoutMs } })
        : this.envelope(txn, { type: message.type === 'Commit' ? 'COMMIT' : 'ABORT', body: {} });
    return this.toParticipant(txn, rm, envelope);
  }

  private tmConfig(txn: ActiveTransaction): TmConfig {
    return { prepareTimeoutMs: txn.timeoutMs, resendIntervalMs: this.config.resendIntervalMs };
  }

  /**
   * An operator's redrive: re-sends the logged decision now to the participants that have not
   * acknowledged it (the core's resend), loading the transaction from the log when it is not
   * running here. Loading goes through recovery, so an undecided transaction would be ended
   * by presumed abort: callers resume only what already has a logged decision.
   */
  async resume(txnId: string): Promise<void> {
    if (this.runtime.has(txnId)) return this.dispatch(txnId, { type: 'timer', timer: 'resend' });
    const logged = await this.log.findById(txnId);
    if (logged && logged.completedAt === null) await this.adopt(logged);
  }
}
