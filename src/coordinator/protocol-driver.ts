/**
 * What every protocol driver offers the rest of the coordinator, and the one place that
 * picks the driver for a transaction's protocol. The API, the Kafka consumer and the
 * takeover service speak to `ProtocolDrivers`; each protocol keeps its own driver.
 */
import { Inject, Injectable } from '@nestjs/common';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { Envelope } from '../transport/kafka/envelope';

export interface ProtocolDriver {
  readonly protocol: string;
  /** False on a replica not configured for the protocol; it is then not offered. */
  readonly enabled?: boolean;
  /** Starts a transaction the API has just logged. */
  begin(txn: TransactionEntity): Promise<void>;
  /** Resumes a transaction taken over from the log (after a takeover or a restart). */
  adopt(txn: TransactionEntity): Promise<void>;
  /** Stops running the transactions of partitions this replica no longer holds. */
  release(partitions: readonly number[]): number;
  /** A protocol message from the coordinator topic; false when the type is not this protocol's. */
  deliver(envelope: Envelope): Promise<boolean>;
  /** Marks an id the API is logging right now, so takeover scans leave it alone. */
  expect(txnId: string): void;
  unexpect(txnId: string): void;
  isActive(txnId: string): boolean;
  activeCount(): number;
  requestAbort(txnId: string, reason: string): Promise<void>;
  /**
   * An operator's redrive: re-sends the logged decision to the participants that have not
   * acknowledged it, loading the transaction from the log when it is not running here.
   * Optional so that a driver can be added before it supports operator actions.
   */
  resume?(txnId: string): Promise<void>;
}

export const PROTOCOL_DRIVERS = Symbol('PROTOCOL_DRIVERS');

@Injectable()
export class ProtocolDrivers {
  private readonly byProtocol: ReadonlyMap<string, ProtocolDriver>;

  constructor(@Inject(PROTOCOL_DRIVERS) drivers: ProtocolDriver[]) {
    this.byProtocol = new Map(drivers.map((d) => [d.protocol, d]));
  }

  protocols(): string[] {
    return [...this.byProtocol.keys()];
  }

  has(protocol: string): boolean {
    return this.byProtocol.has(protocol);
  }

  for(protocol: string): ProtocolDriver {
    const driver = this.byProtocol.get(protocol);
    if (!driver) throw new Error(`no driver for protocol ${protocol}`);
    return driver;
  }

  all(): ProtocolDriver[] {
    return [...this.byProtocol.values()];
  }

  isActive(txnId: string): boolean {
    return this.all().some((d) => d.isActive(txnId));
  }

  activeCount(): number {
    return this.all().reduce((n, d) => n + d.activeCount(), 0);
  }

  release(partitions: readonly number[]): number {
    return this.all().reduce((n, d) => n + d.release(partitions), 0);
  }
}
