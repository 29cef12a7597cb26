/**
 * Ownership of transactions across replicas. A replica runs the transactions of the
 * partitions it holds; it renews its lease on them, and when Kafka hands it a partition it
 * takes over that partition's unfinished transactions once their owner's lease has expired,
 * raising each one's epoch so that participants ignore the old owner from then on. A
 * replica that restarts under the same id takes its own transactions back at once.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { TransactionEvents } from '../telemetry/transaction-events';
import { PartitionOwnership } from './partition-ownership';
import { ProtocolDrivers } from './protocol-driver';

@Injectable()
export class TakeoverService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(TakeoverService.name);
  private renewTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescan = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: DecisionLogRepository,
    private readonly ownership: PartitionOwnership,
    private readonly drivers: ProtocolDrivers,
    private readonly events: TransactionEvents,
  ) {}

  onModuleInit(): void {
    this.ownership.subscribe(({ removed }) => {
      const released = this.drivers.release(removed);
      if (released > 0) this.logger.log(`released ${released} transaction(s) of partitions ${removed.join(',')}`);
      void this.scan();
    });
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.config.leaseDurationMs / 3)));
    this.renewTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.renewTimer);
    clearTimeout(this.scanTimer);
  }

  /** Takes over what can be taken now and comes back when the next lease runs out. */
  scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = this.scanOnce()
      .catch((error: Error) => this.logger.warn(`takeover scan failed: ${error.message}`))
      .finally(() => {
        this.scanning = undefined;
        if (this.rescan) {
          this.rescan = false;
          void this.scan();
        }
      });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const candidates = (await this.log.findUnfinishedIn(this.ownership.ownedPartitions())).filter((txn) => !this.drivers.isActive(txn.id));
    let nextExpiry = Number.POSITIVE_INFINITY;
    for (const txn of candidates) {
      const mine = txn.ownerId === this.config.coordinatorId;
      const expiresAt = new Date(txn.leaseExpiresAt).getTime();
      if (!mine && expiresAt > Date.now()) {
        nextExpiry = Math.min(nextExpiry, expiresAt);
        continue;
      }
      await this.takeOver(txn);
    }
    clearTimeout(this.scanTimer);
    if (Number.isFinite(nextExpiry)) {
      this.scanTimer = setTimeout(() => void this.scan(), Math.max(10, nextExpiry - Date.now() + 20));
      this.scanTimer.unref();
    }
  }

  private async takeOver(txn: TransactionEntity): Promise<void> {
    if (!this.ownership.owns(txn.partition)) return;
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

  private async renew(): Promise<void> {
    try {
      await this.log.renewLeases(this.config.coordinatorId, this.ownership.ownedPartitions(), this.config.leaseDurationMs);
    } catch (error) {
      this.logger.warn(`could not renew leases: ${(error as Error).message}`);
    }
  }
}
