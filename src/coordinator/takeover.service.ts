/**
 * Ownership of transactions across replicas. A replica runs the transactions of the
 * partitions it holds; it renews its lease on them, and when Kafka hands it a partition it
 * takes over that partition's unfinished transactions once their owner's lease has expired,
 * raising each one's epoch so that participants ignore the old owner from then on. A
 * replica that restarts under the same id takes its own transactions back at once.
 *
 * Ownership is checked against the log, never assumed from memory. Every assignment (also
 * one that hands back the same partitions, as after a pause past the lease) and a periodic
 * timer run the same scan, which adopts what the log says is this replica's to run and
 * stops running what another replica took over meanwhile. A failed scan is retried.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { TransactionEvents } from '../telemetry/transaction-events';
import { PartitionOwnership } from '../transport/kafka/partition-ownership';
import { ProtocolDrivers } from './protocol-driver';

const FIRST_RETRY_MS = 100;

/** What one scan found in the log for the partitions this replica holds. */
export interface ScanPlan {
  /** Partitions with a transaction this replica runs although the log names another owner. */
  readonly superseded: readonly number[];
  /** Transactions to take over now: this replica's own that it does not run, and expired ones. */
  readonly adoptable: readonly TransactionEntity[];
  /** When the earliest lease still running out expires, if any. */
  readonly nextExpiryAt: number | undefined;
}

/**
 * Sorts the unfinished transactions of the held partitions. Pure, so that the rules read in
 * one place: an own transaction not running here is adopted at once (a step of it failed
 * and it was dropped, or the process restarted); another owner's waits for its lease; a
 * transaction running here that the log gives to another replica was taken over while this
 * one was paused or cut off, and its partition's runs must stop and be read back from the log.
 */
export function planScan(unfinished: readonly TransactionEntity[], self: string, isActive: (txnId: string) => boolean, now: number): ScanPlan {
  const superseded = new Set<number>();
  for (const txn of unfinished) if (txn.ownerId !== self && isActive(txn.id)) superseded.add(txn.partition);
  const adoptable: TransactionEntity[] = [];
  let nextExpiryAt: number | undefined;
  for (const txn of unfinished) {
    if (isActive(txn.id) && !superseded.has(txn.partition)) continue;
    const expiresAt = new Date(txn.leaseExpiresAt).getTime();
    if (txn.ownerId === self || expiresAt <= now) adoptable.push(txn);
    else nextExpiryAt = Math.min(nextExpiryAt ?? Number.POSITIVE_INFINITY, expiresAt);
  }
  return { superseded: [...superseded].sort((a, b) => a - b), adoptable, nextExpiryAt };
}

@Injectable()
export class TakeoverService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(TakeoverService.name);
  private renewTimer: NodeJS.Timeout | undefined;
  private periodicTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescan = false;
  private failures = 0;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: DecisionLogRepository,
    private readonly ownership: PartitionOwnership,
    private readonly drivers: ProtocolDrivers,
    private readonly events: TransactionEvents,
  ) {}

  onModuleInit(): void {
    this.ownership.subscribe(({ removed }) => {
      if (removed.length > 0) {
        const released = this.drivers.release(removed);
        if (released > 0) this.logger.log(`released ${released} transaction(s) of partitions ${removed.join(',')}`);
      }
      void this.scan();
    });
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.config.leaseDurationMs / 3)));
    this.renewTimer.unref();
    // Catches what no assignment and no lease expiry brings: an own transaction dropped
    // from memory after a failed step, or a takeover that happened while this one slept.
    this.periodicTimer = setInterval(() => void this.scan(), Math.max(100, this.config.leaseDurationMs));
    this.periodicTimer.unref();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.renewTimer);
    clearInterval(this.periodicTimer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.retryTimer);
  }

  /** Takes over what can be taken now and comes back when the next lease runs out. */
  scan(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = this.scanOnce()
      .then(
        () => {
          this.failures = 0;
        },
        (error: Error) => this.retryAfterFailure(error),
      )
      .finally(() => {
        this.scanning = undefined;
        if (this.rescan) {
          this.rescan = false;
          void this.scan();
        }
      });
    return this.scanning;
  }

  private retryAfterFailure(error: Error): void {
    this.failures += 1;
    const delayMs = Math.min(Math.max(FIRST_RETRY_MS, this.config.leaseDurationMs), FIRST_RETRY_MS * 2 ** (this.failures - 1));
    this.logger.warn(`takeover scan failed (${this.failures} in a row), retrying in ${delayMs} ms: ${error.message}`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.scan(), delayMs);
    this.retryTimer.unref();
  }

  private async scanOnce(): Promise<void> {
    const unfinished = await this.log.findUnfinishedIn(this.ownership.ownedPartitions());
    // Leases are the log's timestamps: judged by the log's clock, with the local clock used only to wait.
    const logNow = await this.log.now();
    const askedAt = performance.now();
    const plan = planScan(unfinished, this.config.coordinatorId, (id) => this.drivers.isActive(id), logNow);
    if (plan.superseded.length > 0) {
      // The lease ran out while this replica was not renewing (paused, or cut off from the
      // database) and another replica raised the epoch. The runs here are fenced out; stop
      // them all in those partitions and resume from the log what is still this replica's.
      const released = this.drivers.release(plan.superseded);
      this.logger.warn(`partitions ${plan.superseded.join(',')}: another replica took over transactions running here; stopped ${released} run(s) to resume them from the log`);
    }
    for (const txn of plan.adoptable) await this.takeOver(txn);
    clearTimeout(this.expiryTimer);
    if (plan.nextExpiryAt !== undefined && !this.stopped) {
      this.expiryTimer = setTimeout(() => void this.scan(), Math.max(10, plan.nextExpiryAt - logNow - (performance.now() - askedAt) + 20));
      this.expiryTimer.unref();
    }
  }

  private async takeOver(txn: TransactionEntity): Promise<void> {
    if (!this.ownership.owns(txn.partition) || this.drivers.isActive(txn.id)) return;
    const taken = await this.log.takeOver(txn.id, { ownerId: txn.ownerId, epoch: txn.epoch }, this.config.coordinatorId, this.config.leaseDurationMs);
    if (!taken) return;
    if (txn.ownerId !== this.config.coordinatorId) {
      this.logger.log(`took over transaction ${txn.id} from ${txn.ownerId} at epoch ${taken.epoch}`);
      this.events.emit({ type: 'takenOver', txnId: txn.id, protocol: txn.protocol, at: Date.now(), startedAt: new Date(txn.createdAt).getTime(), fromOwner: txn.ownerId, epoch: taken.epoch });
    }
    if (!this.drivers.has(taken.protocol)) {
      this.logger.error(`transaction ${taken.id} uses protocol ${taken.protocol}, which this replica does not run`);
      return;
    }
    await this.drivers.for(taken.protocol).adopt(taken);
  }

  /**
   * Renews every unfinished transaction of the held partitions that the log gives to this
   * replica, also one it no longer runs: such a one is adopted again by the next scan (own
   * transactions need no expired lease), so renewing it strands nothing, and the renewal
   * stays one statement without a list of ids.
   */
  private async renew(): Promise<void> {
    try {
      await this.log.renewLeases(this.config.coordinatorId, this.ownership.ownedPartitions(), this.config.leaseDurationMs);
    } catch (error) {
      this.logger.warn(`could not renew leases: ${(error as Error).message}`);
    }
  }
}
