/**
 * Translation between the Paxos Commit cores' messages and the wire envelope. The envelope
 * bodies mirror the core messages field for field (paxos-commit-bodies.ts), so both directions
 * are copies; the sender's identity travels in the envelope's `from` (the phase 2b's acceptor).
 * Paxos Commit fences with ballots, not owner epochs, so its envelopes carry epoch 0.
 */
import { Decision } from '../../protocols/common/effects';
import { InstanceValue, MessageOf, PaxosCommitMessage } from '../../protocols/paxos-commit/messages';
import { Envelope, EnvelopeOf } from './envelope';

export const PAXOS_COMMIT = 'paxos-commit' as const;

type PhaseEnvelope = EnvelopeOf<'PHASE1A' | 'PHASE1B' | 'PHASE2A' | 'PHASE2B'>;

const header = (txnId: string, from: string) => ({
  v: 1 as const,
  txnId,
  protocol: PAXOS_COMMIT,
  from,
  epoch: 0,
  sentAt: new Date().toISOString(),
});

/** Adds the participants' reasons to Aborted entries, where the sender knows them. */
function withReasons(entries: readonly InstanceValue[], reasons?: ReadonlyMap<string, string>) {
  return entries.map((e) => {
    const reason = e.value === 'Aborted' ? reasons?.get(e.rm) : undefined;
    return reason ? { rm: e.rm, value: e.value, reason } : { rm: e.rm, value: e.value };
  });
}

/**
 * The envelope of a phase message of a core. `reasons` (participant to why it voted Aborted)
 * rides along with Aborted entries so that the decision can say why.
 */
export function phaseEnvelope(
  message: MessageOf<'phase1a' | 'phase1b' | 'phase2a' | 'phase2b'>,
  from: string,
  reasons?: ReadonlyMap<string, string>,
): PhaseEnvelope {
  switch (message.type) {
    case 'phase1a':
      return { ...header(message.txnId, from), type: 'PHASE1A', body: { membership: message.membership, ballot: message.ballot, instances: message.instances } };
    case 'phase1b': {
      const { ballot, promised, maxBal, reports } = message;
      return { ...header(message.txnId, from), type: 'PHASE1B', body: { ballot, promised, maxBal, reports } };
    }
    case 'phase2a': {
      const { membership, ballot, leader } = message;
      return { ...header(message.txnId, from), type: 'PHASE2A', body: { membership, ballot, leader, entries: withReasons(message.entries, reasons) } };
    }
    case 'phase2b':
      return { ...header(message.txnId, from), type: 'PHASE2B', body: { ballot: message.ballot, entries: withReasons(message.entries, reasons) } };
  }
}

export function outcomeEnvelope(txnId: string, decision: Decision, from: string): EnvelopeOf<'COMMIT' | 'ABORT'> {
  return { ...header(txnId, from), type: decision, body: {} };
}

export function queryEnvelope(txnId: string, from: string): EnvelopeOf<'QUERY'> {
  return { ...header(txnId, from), type: 'QUERY', body: {} };
}

export function ackEnvelope(txnId: string, outcome: Decision, from: string): EnvelopeOf<'ACK'> {
  return { ...header(txnId, from), type: 'ACK', body: { outcome } };
}

/** The core message an inbound phase envelope carries, or undefined for any other envelope. */
export function phaseMessage(envelope: Envelope): PaxosCommitMessage | undefined {
  const { txnId, from } = envelope;
  switch (envelope.type) {
    case 'PHASE1A':
      return { type: 'phase1a', txnId, membership: envelope.body.membership, ballot: envelope.body.ballot, instances: envelope.body.instances };
    case 'PHASE1B': {
      const { ballot, promised, maxBal, reports } = envelope.body;
      return { type: 'phase1b', txnId, acceptor: from, ballot, promised, maxBal, reports };
    }
    case 'PHASE2A': {
      const { membership, ballot, leader, entries } = envelope.body;
      return { type: 'phase2a', txnId, membership, ballot, leader, entries: entries.map(({ rm, value }) => ({ rm, value })) };
    }
    case 'PHASE2B':
      return { type: 'phase2b', txnId, acceptor: from, ballot: envelope.body.ballot, entries: envelope.body.entries.map(({ rm, value }) => ({ rm, value })) };
    default:
      return undefined;
  }
}

/** Why participants voted Aborted, as far as an inbound phase 2a or 2b says. */
export function reasonsOf(envelope: EnvelopeOf<'PHASE2A' | 'PHASE2B'>): Map<string, string> {
  const reasons = new Map<string, string>();
  for (const entry of envelope.body.entries) if (entry.value === 'Aborted' && entry.reason) reasons.set(entry.rm, entry.reason);
  return reasons;
}
