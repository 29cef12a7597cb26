/**
 * The spans of one transaction's phases. The prepare phase runs from `begin` (or a recovery
 * without a decision) until the decision, or for 3PC until the logged PreCommit; 3PC's
 * precommit phase runs from there until the decision; the commit phase from the decision
 * until every participant acknowledged. Messages sent during a phase are children of its
 * span, so a trace reads as the protocol does.
 *
 * Every phase span carries the transaction's decision. A phase that ends before the decision
 * is known (3PC's prepare phase) is therefore held open in memory and ended, with the time it
 * really ended, once the decision is known, or without a decision once this replica lets the
 * transaction go.
 */
import { Context, Span, context, trace } from '@opentelemetry/api';
import { Decision } from '../protocols/common/effects';
import { ATTR_TXN_DECISION, ATTR_TXN_ID, ATTR_TXN_PROTOCOL, contextFromTraceparent, startSpan } from '../telemetry/txn-tracing';

/** `precommit` is 3PC's middle phase, from the logged PreCommit until the decision. */
export type Phase = 'prepare' | 'precommit' | 'commit';

export class TransactionTrace {
  private span: Span | undefined;
  private spanContext: Context | undefined;
  private decision: Decision | undefined;
  /** Phases that ended before the decision was known, with their end on the span clock (performance.now()). */
  private readonly undecided: { readonly span: Span; readonly endedAt: number }[] = [];

  constructor(
    private readonly txnId: string,
    private readonly protocol: string,
    private readonly traceparent: string | null,
    /** The decision already in the log, for a transaction resumed after it was decided. */
    logged: Decision | null = null,
  ) {
    this.decision = logged ?? undefined;
  }

  get attributes(): Record<string, string> {
    return { [ATTR_TXN_ID]: this.txnId, [ATTR_TXN_PROTOCOL]: this.protocol };
  }

  /** Starts `phase`, ending the one before; `parent` is where the step that began it runs. */
  startPhase(phase: Phase, parent: Context, extra: Record<string, string | boolean> = {}): void {
    this.endPhase();
    // Phases hang off the transaction's root, not off whichever message happened to end the last one.
    const root = this.traceparent ? contextFromTraceparent(this.traceparent) : parent;
    const decision = this.decision ? { [ATTR_TXN_DECISION]: this.decision } : {};
    this.span = startSpan(`${this.protocol} ${phase} phase`, root, { ...this.attributes, ...decision, ...extra });
    this.spanContext = trace.setSpan(root, this.span);
  }

  decided(decision: Decision, parent: Context): void {
    this.decision = decision;
    this.span?.setAttribute(ATTR_TXN_DECISION, decision);
    for (const { span, endedAt } of this.undecided.splice(0)) {
      span.setAttribute(ATTR_TXN_DECISION, decision);
      span.end(endedAt);
    }
    this.startPhase('commit', parent, { [ATTR_TXN_DECISION]: decision });
  }

  /** The context that messages of the current phase are sent in. */
  context(fallback: Context = context.active()): Context {
    return this.spanContext ?? fallback;
  }

  /** Ends every span of the transaction here: this replica is done with it, decided or not. */
  end(): void {
    this.endPhase();
    for (const { span, endedAt } of this.undecided.splice(0)) span.end(endedAt);
  }

  private endPhase(): void {
    if (this.span && this.decision === undefined) this.undecided.push({ span: this.span, endedAt: performance.now() });
    else this.span?.end();
    this.span = undefined;
    this.spanContext = undefined;
  }
}
