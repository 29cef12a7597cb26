/**
 * The application service behind the REST API: it checks participants against the
 * registry, logs the transaction durably, hands it to the protocol driver and, when asked,
 * waits for the decision.
 */
import { Inject, Injectable, NotFoundException, ServiceUnavailableException, UnprocessableEntityException } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { DecisionLogRepository, TransactionFilter } from '../decision-log/decision-log.repository';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { ParticipantRegistry } from '../registry/participant-registry.service';
import { CreateTransactionRequest } from './transaction-request';
import { activeTraceparent } from '../telemetry/txn-tracing';
import { DecisionWaiters } from './decision-waiters';
import { PartitionOwnership } from '../transport/kafka/partition-ownership';
import { ProtocolDrivers } from './protocol-driver';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const POLL_INTERVAL_MS = 100;

@Injectable()
export class TransactionsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: DecisionLogRepository,
    private readonly registry: ParticipantRegistry,
    private readonly drivers: ProtocolDrivers,
    private readonly waiters: DecisionWaiters,
    private readonly ownership: PartitionOwnership,
  ) {}

  async create(
    request: CreateTransactionRequest,
    idempotencyKey: string | null,
    traceContext: string | null,
  ): Promise<{ created: boolean; transaction: TransactionEntity }> {
    await this.checkParticipants(request);
    const slot = this.ownership.newTransactionId();
    if (!slot) {
      throw new ServiceUnavailableException('this coordinator holds no partition of the coordinator topic yet (starting or rebalancing); retry, with the same Idempotency-Key');
    }
    // Claimed before it is logged, so a takeover scan never mistakes it for an orphan.
    const driver = this.drivers.for(request.protocol);
    driver.expect(slot.id);
    let result;
    try {
      result = await this.log.createTransaction({
        id: slot.id,
        partition: slot.partition,
        leaseMs: this.config.leaseDurationMs,
        protocol: request.protocol,
        participants: request.participants,
        timeoutMs: request.timeoutMs,
        idempotencyKey,
        requestHash: request.requestHash,
        ownerId: this.config.coordinatorId,
        // The API request's span is the root of the transaction's trace; without tracing, keep the client's.
        traceContext: activeTraceparent() ?? traceContext,
      });
    } finally {
      if (!result?.created) driver.unexpect(slot.id);
    }
    if (!result.created) {
      if (result.transaction.requestHash !== request.requestHash) {
        throw new UnprocessableEntityException(`Idempotency-Key ${idempotencyKey} was already used for a different request (transaction ${result.transaction.id})`);
      }
      return result;
    }
    void driver.begin(result.transaction);
    return result;
  }

  async get(id: string, waitMs: number): Promise<TransactionEntity> {
    const found = UUID.test(id) ? await this.log.findById(id) : null;
    if (!found) throw new NotFoundException(`transaction ${id} not found`);
    if (found.decision || waitMs === 0) return found;
    await this.waitForDecision(id, waitMs);
    return (await this.log.findById(id))!;
  }

  list(filter: TransactionFilter): Promise<TransactionEntity[]> {
    return this.log.list(filter);
  }

  private async waitForDecision(id: string, waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    if (this.drivers.isActive(id)) {
      const waiting = this.waiters.wait(id, waitMs);
      // The decision may have landed between the read above and the wait; look once more.
      const latest = await this.log.findById(id);
      if (latest?.decision) this.waiters.notify(id, latest.decision);
      await waiting;
      return;
    }
    // Another replica (or recovery) runs it: poll the shared log.
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_INTERVAL_MS, deadline - Date.now())));
      if ((await this.log.findById(id))?.decision) return;
    }
  }

  private async checkParticipants(request: CreateTransactionRequest): Promise<void> {
    for (const { name } of request.participants) {
      const availability = await this.registry.availability(name, request.protocol);
      if (availability.ok) continue;
      switch (availability.reason) {
        case 'unknown':
          throw new UnprocessableEntityException(`unknown participant ${name}: it has never announced itself`);
        case 'protocol':
          throw new UnprocessableEntityException(`participant ${name} does not support protocol ${request.protocol}`);
        case 'stale':
          throw new ServiceUnavailableException(`participant ${name} has not announced itself within ${this.config.participantTtlMs} ms`);
      }
    }
  }
}
