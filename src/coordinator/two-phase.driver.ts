/**
 * Runs the pure 2PC coordinator core against the real world: the decision log in Postgres,
 * Kafka, and timers. It carries out every step's persist effects, and waits for them to be
 * durable, before any of the step's messages leave (see protocols/common/effects.ts), and it
 * feeds one input at a time to each transaction so the core never sees interleaved steps.
 */
import { Injectable } from '@nestjs/common';
import { context } from '@opentelemetry/api';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { assertNever } from '../protocols/common/assert';
import { orderForDurability } from '../protocols/common/effects';
import { CoordinatorEffect, CoordinatorInput, CoordinatorState, TmConfig, TmRecord, decisionOf, initialCoordinatorState, step } from '../protocols/two-phase/coordinator';
import { TmToRm } from '../protocols/two-phase/messages';
import { Envelope } from '../transport/kafka/envelope';
import { OutboundMessage } from '../transport/kafka/kafka-publisher';
import { ATTR_TXN_DECISION, contextForTransaction, inSpan } from '../telemetry/txn-tracing';
import { ActiveTransaction, activeFromLog } from './active-transaction';
import { DriverDependencies, ProtocolDriverBase } from './protocol-driver.base';

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
    if (this.active.has(txn.id)) return Promise.resolve();
    this.active.set(txn.id, activeFromLog(txn));
    return this.dispatch(txn.id, { type: 'recover' });
  }

  /** A message from a participant. Messages about transactions not running here are answered from the log. */
  async deliver(envelope: Envelope): Promise<boolean> {
    const input = toCoordinatorInput(envelope);
    if (!input) return false;
    if (this.active.has(envelope.txnId)) await this.dispatch(envelope.txnId, input);
    else if (input.type === 'vote' || input.type === 'query') await this.answerFromLog(envelope.txnId, input.rm, envelope.epoch);
    return true;
  }

  requestAbort(txnId: string, reason: string): Promise<void> {
    return this.active.has(txnId) ? this.dispatch(txnId, { type: 'abortRequested', reason }) : Promise.resolve();
  }

  protected participantDown(rm: string): void {
    for (const [txnId, txn] of this.active) {
      if (txn.state.rms.includes(rm) && decisionOf(txn.state) === undefined) void this.dispatch(txnId, { type: 'participantDown', rm });
    }
  }

  protected async apply(txnId: string, input: CoordinatorInput): Promise<void> {
    const txn = this.active.get(txnId);
    if (!txn || this.stopping) return;
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
    await Promise.all(persists.map((effect) => effect.kind === 'persist' && this.persist(txn, effect.record)));
    txn.state = result.state;
    const decision = decisionOf(txn.state);
    const decidedNow = decision !== undefined && persists.some((e) => e.kind === 'persist' && e.record.type === 'decision');
    if (decidedNow) {
      txn.trace.decided(decision, parent);
      await this.failpoints.reach('after-decision-logged', txnId);
    }
    for (const effect of persists) if (effect.kind === 'persist') this.emitPersisted(txn, effect.record);
    const outbound: OutboundMessage[] = [];
    for (const effect of rest) this.carryOut(txn, effect, outbound);
    await context.with(txn.trace.context(parent), () => this.publish(txnId, outbound, decidedNow ? 'after-some-decisions-sent' : undefined));
    if (input.type === 'begin') {
      this.emit(txn, { type: 'prepareSent', participants: txn.state.rms });
      await this.failpoints.reach('after-prepare-sent', txnId);
    }
    if (input.type === 'vote' && decision === undefined && txn.state.tmPrepared.length > 0) await this.failpoints.reach('after-votes', txnId);
    if (input.type === 'recover') this.emit(txn, { type: 'recovered', decided: decisionOf(txn.state) !== undefined });
    if (txn.state.done) this.finish(txnId, txn);
  }

  private carryOut(txn: ActiveTransaction, effect: CoordinatorEffect, outbound: OutboundMessage[]): void {
    switch (effect.kind) {
      case 'persist':
        return;
      case 'send':
        outbound.push(this.outbound(txn, effect.to, effect.message));
        return;
      case 'setTimer':
        this.arm(txn, effect.timer, effect.afterMs, { type: 'timer', timer: effect.timer });
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

  private async persist(txn: ActiveTransaction, record: TmRecord): Promise<void> {
    const txnId = txn.state.txnId;
    switch (record.type) {
      case 'vote':
        return this.log.appendVote(txnId, record.rm, record.vote === 'Prepared' ? 'YES' : 'NO', record.reason);
      case 'decision': {
        const attributes = { ...txn.trace.attributes, [ATTR_TXN_DECISION]: record.decision };
        const logged = await inSpan('decision-log append decision', txn.trace.context(), attributes, () =>
          this.log.appendDecision(txnId, record.decision, record.reason),
        );
        if (logged !== record.decision) throw new Error(`log already holds ${logged}; refusing to act on ${record.decision}`);
        return;
      }
      case 'ack':
        return this.log.appendAck(txnId, record.rm);
      case 'complete':
        return this.log.markComplete(txnId);
      default:
        assertNever(record, 'record');
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
    if (this.active.has(txnId)) return this.dispatch(txnId, { type: 'timer', timer: 'resend' });
    const logged = await this.log.findById(txnId);
    if (logged && logged.completedAt === null) await this.adopt(logged);
  }
}

function toCoordinatorInput(envelope: Envelope): CoordinatorInput | undefined {
  switch (envelope.type) {
    case 'VOTE':
      return { type: 'vote', rm: envelope.from, vote: envelope.body.vote === 'YES' ? 'Prepared' : 'Aborted', reason: envelope.body.reason };
    case 'ACK':
      return { type: 'ack', rm: envelope.from };
    case 'QUERY':
      return { type: 'query', rm: envelope.from };
    default:
      return undefined;
  }
}
