/**
 * Trace context for transactions. A transaction's trace is rooted at the API request that
 * created it; its traceparent is stored with the transaction so that work done much later
 * (a timer, a recovery, a takeover on another replica) still joins that trace.
 */
import { Attributes, Context, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';

export const tracer = trace.getTracer('txn-coordinator');

export const ATTR_TXN_ID = 'txn.id';
export const ATTR_TXN_PROTOCOL = 'txn.protocol';
export const ATTR_TXN_DECISION = 'txn.decision';

/** The W3C traceparent of the active span, or null when there is none. */
export function activeTraceparent(active: Context = context.active()): string | null {
  const carrier: Record<string, string> = {};
  propagation.inject(active, carrier);
  return carrier.traceparent ?? null;
}

export function contextFromTraceparent(traceparent: string | null): Context {
  return traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

/**
 * The context a step of `traceparent`'s transaction runs in: the caller's when it carries a
 * span of the same trace (a Kafka message of this transaction, the API request), otherwise
 * the stored one.
 */
export function contextForTransaction(traceparent: string | null): Context {
  const stored = contextFromTraceparent(traceparent);
  const activeSpan = trace.getSpanContext(context.active());
  const storedSpan = trace.getSpanContext(stored);
  if (activeSpan && (!storedSpan || activeSpan.traceId === storedSpan.traceId)) return context.active();
  return stored;
}

export function startSpan(name: string, parent: Context, attributes: Attributes, kind = SpanKind.INTERNAL): Span {
  return tracer.startSpan(name, { kind, attributes }, parent);
}

/** Runs `work` inside a child span of `parent`, recording a failure on the span. */
export async function inSpan<T>(name: string, parent: Context, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  const span = startSpan(name, parent, attributes);
  try {
    return await context.with(trace.setSpan(parent, span), work);
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}
