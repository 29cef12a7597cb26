/**
 * The spans of one transaction's phases. The prepare phase runs from `begin` (or a recovery
 * without a decision) until the decision; the commit phase from the decision until every
 * participant acknowledged. Messages sent during a phase are children of its span, so a
 * trace reads as the protocol does.
 */
import { Context, Span, context, trace } from '@opentelemetry/api';
import { Decision } from '../protocols/common/effects';
import { ATTR_TXN_DECISION, ATTR_TXN_ID, ATTR_TXN_PROTOCOL, contextFromTraceparent, startSpan } from '../telemetry/txn-tracing';

/** `precommit` is 3PC's middle phase, from the logged PreCommit until the decision. */
export type Phase = 'prepare' | 'precommit' | 'commit';

export class TransactionTrace {
  private span: Span | undefined;
  private spanContext: Context | undefined;

  constructor(
    private readonly txnId: string,
    private readonly protocol: string,
    private readonly traceparent: string | null,
  ) {}

  get attributes(): Record<string, string> {
    return { [ATTR_TXN_ID]: this.txnId, [ATTR_TXN_PROTOCOL]: this.protocol };
  }

  /** Starts `phase`, ending the one before; `parent` is where the step that began it runs. */
  startPhase(phase: Phase, parent: Context, extra: Record<string, string | boolean> = {}): void {
    this.end();
    // Phases hang off the transaction's root, not off whichever message happened to end the last one.
    const root = this.traceparent ? contextFromTraceparent(this.traceparent) : parent;
    this.span = startSpan(`${this.protocol} ${phase} phase`, root, { ...this.attributes, ...extra });
    this.spanContext = trace.setSpan(root, this.span);
  }

  decided(decision: Decision, parent: Context): void {
    this.span?.setAttribute(ATTR_TXN_DECISION, decision);
    this.startPhase('commit', parent, { [ATTR_TXN_DECISION]: decision });
  }

  /** The context that messages of the current phase are sent in. */
  context(fallback: Context = context.active()): Context {
    return this.spanContext ?? fallback;
  }

  end(): void {
    this.span?.end();
    this.span = undefined;
    this.spanContext = undefined;
  }
}
