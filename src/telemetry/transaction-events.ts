/**
 * What happens to transactions, as plain events: the protocol drivers emit them once the
 * fact is durable, and metrics, tracing and the ops views listen. Keeping this one seam means
 * the drivers know nothing about Prometheus or dashboards.
 */
import { Injectable, Logger } from '@nestjs/common';

interface Base {
  readonly txnId: string;
  readonly protocol: string;
  /** Milliseconds since the epoch when the event happened. */
  readonly at: number;
  /** When the transaction was created, for latencies. */
  readonly startedAt: number;
}

export type TransactionEvent =
  | (Base & { readonly type: 'prepareSent'; readonly participants: readonly string[] })
  | (Base & { readonly type: 'voted'; readonly participant: string; readonly vote: 'YES' | 'NO' })
  /** 3pc: every participant voted yes and the PreCommit is logged; from here the transaction commits unless everyone fails. */
  | (Base & { readonly type: 'preCommitted' })
  | (Base & { readonly type: 'decided'; readonly decision: 'COMMIT' | 'ABORT'; readonly reason: string })
  | (Base & { readonly type: 'acked'; readonly participant: string })
  | (Base & { readonly type: 'completed' })
  | (Base & { readonly type: 'recovered'; readonly decided: boolean })
  | (Base & { readonly type: 'takenOver'; readonly fromOwner: string; readonly epoch: number });

export type TransactionEventListener = (event: TransactionEvent) => void;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event as a driver states it; `emitFact` adds which transaction it is about and when. */
export type TransactionFact = DistributiveOmit<TransactionEvent, keyof Base>;

@Injectable()
export class TransactionEvents {
  private readonly logger = new Logger(TransactionEvents.name);
  private readonly listeners: TransactionEventListener[] = [];

  subscribe(listener: TransactionEventListener): void {
    this.listeners.push(listener);
  }

  /** Emits `fact` about the transaction `of`, as happening now. */
  emitFact(fact: TransactionFact, of: { readonly txnId: string; readonly protocol: string; readonly startedAt: number }): void {
    this.emit({ ...fact, txnId: of.txnId, protocol: of.protocol, startedAt: of.startedAt, at: Date.now() } as TransactionEvent);
  }

  emit(event: TransactionEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        // An observer must never break the protocol path.
        this.logger.warn(`listener failed on ${event.type}: ${(error as Error).message}`);
      }
    }
  }
}
