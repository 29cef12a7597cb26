/** Reading a stored W3C traceparent (`00-<traceId>-<spanId>-<flags>`) for links to the trace viewer. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const INVALID_TRACE_ID = '0'.repeat(32);

/** The trace id of `traceparent`, or null when there is none or it is malformed or the all-zero id. */
export function traceIdOf(traceparent: string | null | undefined): string | null {
  const traceId = traceparent ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
  return traceId && traceId !== INVALID_TRACE_ID ? traceId : null;
}
