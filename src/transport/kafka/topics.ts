/**
 * Topic names. A prefix lets several deployments (or test runs) share one cluster without
 * hearing each other.
 */
export interface Topics {
  /** Participants to coordinators: VOTE, ACK, QUERY. Keyed by transaction id. */
  readonly coordinator: string;
  /** Participant announcements (ANNOUNCE), keyed by participant name. */
  readonly participants: string;
  /** Messages that could not be parsed or handled, with the reason in headers. */
  readonly deadLetter: string;
  /** Coordinators to one participant: PREPARE, COMMIT, ABORT. Keyed by transaction id. */
  participant(name: string): string;
}

export function topicsFor(prefix: string): Topics {
  return {
    coordinator: `${prefix}.coordinator`,
    participants: `${prefix}.participants`,
    deadLetter: `${prefix}.dlq`,
    participant: (name) => `${prefix}.rm.${name}`,
  };
}

export const HEADER_TRACEPARENT = 'traceparent';
export const HEADER_DLQ_REASON = 'x-dlq-reason';
export const HEADER_DLQ_SOURCE_TOPIC = 'x-dlq-source-topic';
