/**
 * Runs the pure 3PC participant core (protocols/three-phase/participant.ts, with the
 * termination protocol of termination.ts) against the service's database, its handlers and
 * Kafka. Each step runs in one database transaction holding the transaction's log row: the
 * core's records, the service's handler writes and the row change commit together, and only
 * then do the step's messages leave (the durability rule of protocols/common/effects.ts).
 * It is a role of the transaction runtime (runtime/transaction-runtime.ts), which feeds a
 * transaction's inputs one at a time, owns its timers and sends, and retries a failed step.
 *
 * The core's timers stand for failure suspicions, and the driver lets one through only when
 * it is justified. The coordinator is suspected once it stays silent longer than it promised
 * (PREPARE's, PRECOMMIT's timeoutMs) plus `terminationGraceMs`, the bound on message delay;
 * a peer is suspected once the announcement detector (peer-detector.ts) says it crashed.
 * With both right, which is 3PC's synchrony assumption, participants finish a transaction
 * by themselves whenever the coordinator crashes.
 */
import { assertNever } from '../protocols/common/assert';
import { EPOCH_ZERO, TM } from '../protocols/three-phase/messages';
import { ParticipantEffect, ParticipantInput, ParticipantState, RmConfig, RmRecord, RmState, RmTimer, initialParticipantState, isDecided, restoreParticipant, step } from '../protocols/three-phase/participant';
import { Clock } from '../runtime/ports';
import { ArmTimer, StepOutcome, TransactionRuntime } from '../runtime/transaction-runtime';
import { PeerDetector } from './peer-detector';
import { ParticipantHandlers, ParticipantLogger, TransactionContext } from './participant-sdk.types';
import { ServiceHandlers } from './service-handlers';
import { HeldTransaction } from './stepped-participant-driver';
import { InboundStep, ThreePhaseReply, toReply } from './three-phase-messages';
import { LockedThreePhaseRow, ThreePhaseLog, ThreePhaseRow } from './three-phase-log.repository';

export interface ThreePhaseSendable extends ThreePhaseReply {
  readonly txnId: string;
  /** The transaction's owner epoch as this participant knows it. */
  readonly epoch: number;
  readonly traceparent?: string;
}

export interface ThreePhaseDriverOptions {
  readonly name: string;
  readonly handlers: ParticipantHandlers;
  readonly log: ThreePhaseLog;
  readonly detector: PeerDetector;
  /** Sends messages to the coordinator (`to` = TM) or to peers; resolves once the broker has them. */
  readonly send: (messages: readonly ThreePhaseSendable[]) => Promise<void>;
  readonly queryIntervalMs: number;
  /** How long a recovery coordinator waits for state reports and PreCommit acks before asking the detector. */
  readonly collectTimeoutMs: number;
  /** The bound on message delay and processing that 3PC assumes; added to every wait for the coordinator. */
  readonly terminationGraceMs: number;
  /** The detector's TTL when a PREPARE did not name one (the coordinator's PARTICIPANT_TTL_MS). */
  readonly defaultParticipantTtlMs: number;
  readonly logger: ParticipantLogger;
  /** Timers and retry backoff; Node's timers unless given. */
  readonly clock?: Clock;
}

/** What the driver remembers about a transaction between steps, beyond the log row. */
interface Memory {
  state: ParticipantState;
  ttlMs: number;
  /** Each peer's announced process when this participant first heard of the transaction. */
  readonly instances: Map<string, string | undefined>;
}

/** A queued input: a message, or a timer whose suspicion the detector must confirm first. */
type DriverInput =
  | { readonly type: ParticipantInput['type']; readonly kind: 'message'; readonly step: InboundStep }
  | { readonly type: `${RmTimer} timer`; readonly kind: 'timer'; readonly timer: RmTimer };

const messageInput = (step: InboundStep): DriverInput => ({ type: step.input.type, kind: 'message', step });
const timerInput = (timer: RmTimer): DriverInput => ({ type: `${timer} timer` as const, kind: 'timer', timer });

interface LockedOutcome {
  /** What to remember once the step is durable; undefined when the step left no trace. */
  readonly memory: Memory | undefined;
  readonly state: ParticipantState;
  readonly replies: ThreePhaseSendable[];
  readonly timers: { readonly timer: RmTimer; readonly afterMs: number }[];
}

/** A timer fired without the detector's backing: look again after `afterMs`. */
interface Recheck {
  readonly recheck: RmTimer;
  readonly afterMs: number;
}

const PREPARED_WORK: readonly RmState[] = ['uncertain', 'precommitted'];

export class ThreePhaseParticipantDriver {
  private readonly runtime: TransactionRuntime<HeldTransaction<Memory>, DriverInput, ThreePhaseSendable>;
  private readonly service: ServiceHandlers;

  constructor(private readonly options: ThreePhaseDriverOptions) {
    this.service = new ServiceHandlers({ name: options.name, protocol: '3pc', handlers: options.handlers, logger: options.logger, noVote: 'NO' });
    this.runtime = new TransactionRuntime<HeldTransaction<Memory>, DriverInput, ThreePhaseSendable>(
      {
        // The row is the state: any message may start a transaction here, and the step decides.
        load: async () => new HeldTransaction<Memory>(),
        run: (held, input, txnId) => this.run(held, input, txnId),
      },
      { name: `${options.name} 3pc transaction`, transport: { send: options.send }, logger: options.logger, clock: options.clock },
    );
  }

  /** Feeds a message from the coordinator or a peer; resolves once it has been handled, or failed and will be tried again. */
  async deliver(step: InboundStep, txnId: string): Promise<void> {
    await this.runtime.submit(txnId, messageInput(step));
  }

  /**
   * Restarted in doubt: each such transaction is `recovering` (it missed part of the
   * protocol, so it never counts in a termination decision) and asks everyone until told.
   */
  async recover(): Promise<number> {
    const rows = await this.options.log.findInDoubt();
    for (const row of rows) {
      // A message that came in first already holds what it learned; that stays.
      this.runtime.start(row.txnId, new HeldTransaction(this.restore(row)));
      void this.runtime.submit(row.txnId, messageInput({ input: { type: 'recover' } }));
    }
    if (rows.length > 0) this.options.logger.info(`recovering ${rows.length} in-doubt 3pc transaction(s): asking the coordinator and the other participants`);
    return rows.length;
  }

  /** Stops timers and retries, and waits for the steps already running. */
  async stop(): Promise<void> {
    this.runtime.stop();
    await this.runtime.idle();
  }

  /** Resolves once every step queued so far has settled. */
  idle(): Promise<void> {
    return this.runtime.idle();
  }

  private async run(held: HeldTransaction<Memory>, input: DriverInput, txnId: string): Promise<StepOutcome<DriverInput, ThreePhaseSendable> | undefined> {
    const step = input.kind === 'message' ? input.step : this.confirmSuspicion(held.memory, input.timer);
    if (!step) return undefined;
    if ('recheck' in step) return { timers: [{ name: step.recheck, afterMs: step.afterMs, input: timerInput(step.recheck) }] };
    const outcome = await held.attempt(input, () => this.options.log.withLockedRow(txnId, (locked) => this.stepLocked(locked, step, held.memory)));
    // Only now is the step durable, so only now does memory move on.
    if (outcome?.memory) held.memory = outcome.memory;
    const decided = outcome !== undefined && isDecided(outcome.state);
    // Timers are armed only for a transaction remembered here; one never joined is let go.
    const finished = decided || (held.memory === undefined && !held.retrying);
    if (!outcome) return finished ? { finished } : undefined;
    const timers: ArmTimer<DriverInput>[] = decided || held.memory === undefined ? [] : outcome.timers.map(({ timer, afterMs }) => ({ name: timer, afterMs, input: timerInput(timer) }));
    return { messages: outcome.replies, timers, finished };
  }

  /**
   * A core timer fired. It reaches the core only if the failure detector backs it; otherwise
   * it is looked at again shortly. Returns the input to step, or undefined when there is
   * nothing to do now.
   */
  private confirmSuspicion(memory: Memory | undefined, timer: RmTimer): InboundStep | Recheck | undefined {
    if (!memory || isDecided(memory.state)) return undefined;
    const { state } = memory;
    const suspects = (rm: string): boolean => this.options.detector.suspects(rm, memory.ttlMs, memory.instances.get(rm));
    const recheck: Recheck = { recheck: timer, afterMs: this.recheckMs(memory) };
    switch (timer) {
      case 'query':
        return { input: { type: 'timer', timer: 'query' } };
      case 'collect':
        if (!state.termination) return undefined;
        return state.termination.awaiting.every(suspects) ? { input: { type: 'timer', timer: 'collect' } } : recheck;
      case 'termination': {
        if (state.recovered || state.termination || state.coordinator === state.rm) return undefined;
        // A live recovery coordinator will tell us; a live candidate we asked is asked again below.
        const following = state.coordinator !== TM && state.epoch.rm === state.coordinator;
        if (following && !suspects(state.coordinator)) return recheck;
        const operational = state.rms.filter((rm) => rm !== state.rm && !suspects(rm));
        return { input: { type: 'coordinatorFailed', operational } };
      }
      default:
        return assertNever(timer, 'timer');
    }
  }

  private async stepLocked(locked: LockedThreePhaseRow, inbound: InboundStep, remembered: Memory | undefined): Promise<LockedOutcome | undefined> {
    const row = locked.row;
    const isNew = row.rmState === 'working';
    if (inbound.ownerEpoch !== undefined && !isNew && inbound.ownerEpoch < row.epoch) {
      this.options.logger.debug?.(`transaction ${row.txnId}: ignoring ${inbound.input.type} from stale owner epoch ${inbound.ownerEpoch} < ${row.epoch}`);
      return undefined;
    }
    // A copy: the remembered state changes only once this step has committed.
    const known = remembered ?? this.restore(row);
    const memory: Memory = { state: known.state, ttlMs: inbound.participantTtlMs ?? known.ttlMs, instances: new Map(known.instances) };
    const epoch = Math.max(row.epoch, inbound.ownerEpoch ?? 0);
    const traceContext = inbound.traceparent ?? row.traceContext;
    const payload = inbound.payload !== undefined && (isNew || row.payload === null) ? inbound.payload : row.payload;
    if (epoch !== row.epoch && !isNew) await locked.update({ epoch });
    const ctx: TransactionContext = { txnId: row.txnId, payload, db: locked.client };
    const config = this.rmConfig(memory);

    const first = step(memory.state, inbound.input, config);
    const pending: { effect: ParticipantEffect; from: RmState }[] = first.effects.map((effect) => ({ effect, from: memory.state.rmState }));
    let state = first.state;
    const sends: ThreePhaseReply[] = [];
    const timers: LockedOutcome['timers'] = [];
    let voteReason: string | undefined;
    for (let i = 0; i < pending.length; i++) {
      const { effect, from } = pending[i];
      switch (effect.kind) {
        case 'runPrepare': {
          this.rememberInstances(memory, state.rms);
          const verdict = await this.service.runPrepare(ctx);
          if (verdict.vote === 'NO') voteReason = verdict.reason;
          const next = step(state, { type: 'localVote', vote: verdict.vote === 'YES' ? 'Prepared' : 'Aborted' }, config);
          pending.push(...next.effects.map((e) => ({ effect: e, from: state.rmState })));
          state = next.state;
          break;
        }
        case 'persist':
          await this.persist(locked, effect.record, { state, epoch, payload, traceContext, reason: voteReason ?? null }, ctx);
          break;
        case 'decide':
          // Only work this participant prepared has anything to finish or undo.
          if (PREPARED_WORK.includes(from)) await this.service.runDecision(effect.decision, ctx);
          break;
        case 'send':
          sends.push(toReply(effect.to, effect.message, { rmState: state.rmState, voteReason, stateReqBoundMs: this.stateReqBoundMs(memory), preCommitBoundMs: this.preCommitBoundMs(memory) }));
          break;
        case 'setTimer':
          timers.push({ timer: effect.timer, afterMs: this.delayOf(effect.timer, inbound, memory) });
          break;
        default:
          assertNever(effect, 'participant effect');
      }
    }
    // A termination epoch answered is durable before the answer leaves, like every other state.
    const durable = locked.row.rmState !== 'working';
    if (durable && !isDecided(state) && !sameEpoch(state.epoch, locked.row.recoveryEpoch)) await locked.update({ recoveryEpoch: state.epoch });
    memory.state = state;
    // A message about a transaction this participant never joined leaves nothing to remember.
    const kept = !isNew || locked.row.rmState !== 'working' ? memory : undefined;
    const trace = traceContext ? { traceparent: traceContext } : {};
    return { memory: kept, state, timers, replies: sends.map((reply) => ({ ...reply, txnId: row.txnId, epoch, ...trace })) };
  }

  private async persist(
    locked: LockedThreePhaseRow,
    record: RmRecord,
    facts: { state: ParticipantState; epoch: number; payload: unknown; traceContext: string | null; reason: string | null },
    ctx: TransactionContext,
  ): Promise<void> {
    const { state, epoch, payload, traceContext } = facts;
    const rmState = record.type;
    const reason = record.type === 'aborted' ? facts.reason : null;
    const participants = record.type === 'prepared' ? record.rms : (locked.row.participants ?? (state.rms.length > 0 ? state.rms : null));
    // The service's pre-commit hook runs in the same database transaction as the record.
    if (record.type === 'precommitted') await this.service.runPreCommit(ctx);
    await locked.update({ rmState, epoch, payload, participants, reason, traceContext, recoveryEpoch: state.epoch });
  }

  /** The core's view of a transaction known only from its log row (after a restart, or a handover). */
  private restore(row: ThreePhaseRow): Memory {
    const ttlMs = this.options.defaultParticipantTtlMs;
    if (row.rmState === 'working') return { state: initialParticipantState(row.txnId, this.options.name), ttlMs, instances: new Map() };
    const records: RmRecord[] = [];
    if (row.participants) records.push({ type: 'prepared', rms: row.participants });
    if (row.rmState !== 'prepared') records.push({ type: row.rmState });
    const restored = restoreParticipant(row.txnId, this.options.name, records);
    return { state: { ...restored, epoch: row.recoveryEpoch ?? EPOCH_ZERO }, ttlMs, instances: new Map() };
  }

  private rememberInstances(memory: Memory, rms: readonly string[]): void {
    for (const rm of rms) if (rm !== this.options.name && !memory.instances.has(rm)) memory.instances.set(rm, this.options.detector.instanceOf(rm));
  }

  /**
   * How long to wait before a timer fires. Waiting on the coordinator: what it promised,
   * plus the grace. The core's own figure is used for the recovery coordinator's collection
   * and for a recovering participant's questions.
   */
  private delayOf(timer: RmTimer, inbound: InboundStep, memory: Memory): number {
    const grace = this.options.terminationGraceMs;
    switch (timer) {
      case 'termination':
        if (inbound.input.type === 'coordinatorFailed') return this.stateReqBoundMs(memory) + grace;
        return (inbound.senderBoundMs ?? memory.ttlMs) + grace;
      case 'collect':
        return this.options.collectTimeoutMs;
      case 'query':
        return this.options.queryIntervalMs;
      default:
        return assertNever(timer, 'timer');
    }
  }

  /** A recovery coordinator collects, maybe pre-commits, then decides: each phase waits at most collect + detection. */
  private stateReqBoundMs(memory: Memory): number {
    return 2 * this.preCommitBoundMs(memory);
  }

  private preCommitBoundMs(memory: Memory): number {
    return this.options.collectTimeoutMs + memory.ttlMs + this.recheckMs(memory);
  }

  private recheckMs(memory: Memory): number {
    return Math.max(50, Math.min(500, Math.floor(memory.ttlMs / 8)));
  }

  private rmConfig(memory: Memory): RmConfig {
    // The driver computes the real delays (delayOf); the core's figures only name the timers.
    return { terminationTimeoutMs: memory.ttlMs, collectTimeoutMs: this.options.collectTimeoutMs, queryIntervalMs: this.options.queryIntervalMs };
  }
}

function sameEpoch(a: { round: number; rm: string }, b: { round: number; rm: string } | null): boolean {
  return b !== null && a.round === b.round && a.rm === b.rm;
}
