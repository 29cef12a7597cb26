/**
 * The operator actions the protocol allows, and nothing more. Abort is allowed only while
 * no decision is logged: a logged decision may already be applied by some participant, and
 * flipping it would leave the others disagreeing. Redrive only re-sends the logged decision
 * to participants that have not acknowledged it. Each request, refused or not, goes into
 * the audit trail with who asked and why.
 */
import { BadRequestException, ConflictException, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { PartitionOwnership } from '../transport/kafka/partition-ownership';
import { ProtocolDriver, ProtocolDrivers } from '../coordinator/protocol-driver';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { OperatorActionKind, OperatorActionOutcome } from '../decision-log/operator-action.entity';
import { TransactionEntity } from '../decision-log/transaction.entity';
import { OperatorActionsRepository } from './operator-actions.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_ACTOR_LENGTH = 200;
const MAX_REASON_LENGTH = 2000;

export interface OperatorRequest {
  readonly by: string;
  readonly reason: string;
}

export interface ActionResult {
  readonly action: OperatorActionKind;
  readonly outcome: OperatorActionOutcome;
  readonly detail: string;
  readonly transaction: TransactionEntity;
}

export function parseOperatorRequest(body: unknown): OperatorRequest {
  const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const text = (name: 'by' | 'reason', max: number): string => {
    const value = fields[name];
    if (typeof value !== 'string' || value.trim() === '') throw new BadRequestException(`${name} is required: a non-empty string`);
    if (value.length > max) throw new BadRequestException(`${name} is ${value.length} characters; the limit is ${max}`);
    return value.trim();
  };
  return { by: text('by', MAX_ACTOR_LENGTH), reason: text('reason', MAX_REASON_LENGTH) };
}

@Injectable()
export class OperatorActionsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly log: DecisionLogRepository,
    private readonly audit: OperatorActionsRepository,
    private readonly drivers: ProtocolDrivers,
    private readonly ownership: PartitionOwnership,
  ) {}

  async abort(id: string, request: OperatorRequest): Promise<ActionResult> {
    const txn = await this.find(id);
    if (txn.decision) {
      return this.refuse(txn, 'abort', request, `decision ${txn.decision} is already logged; changing it would break atomicity, since participants may have applied it. Use redrive to finish it.`);
    }
    const driver = this.driverHere(txn);
    if (typeof driver === 'string') return this.refuse(txn, 'abort', request, driver);
    const reason = `aborted by operator ${request.by}: ${request.reason}`;
    let decision: 'COMMIT' | 'ABORT' | null;
    if (driver.isActive(txn.id)) {
      // The protocol's own abort path: the core logs ABORT only if it is still undecided.
      await driver.requestAbort(txn.id, reason);
      decision = (await this.find(id)).decision;
      if (!decision) return this.refuse(txn, 'abort', request, 'the transaction is still starting on this coordinator; retry in a moment');
    } else {
      // Not running in this process: the log decides. appendDecision never overwrites, so a
      // COMMIT that won the race stays, and is reported below.
      decision = await this.log.appendDecision(txn.id, 'ABORT', reason);
      if (decision === 'ABORT') await driver.resume!(txn.id);
    }
    if (decision !== 'ABORT') {
      return this.refuse(txn, 'abort', request, `decision ${decision} was logged before the abort took effect; it stands`);
    }
    return this.accept(txn.id, 'abort', request, 'aborted', 'ABORT logged; participants are being told');
  }

  async redrive(id: string, request: OperatorRequest): Promise<ActionResult> {
    const txn = await this.find(id);
    if (!txn.decision) {
      return this.refuse(txn, 'redrive', request, 'no decision is logged yet, so there is nothing to re-send: abort it instead, or wait for the votes or the prepare timeout');
    }
    if (txn.completedAt) return this.refuse(txn, 'redrive', request, `already complete: every participant acknowledged ${txn.decision}`);
    const driver = this.driverHere(txn);
    if (typeof driver === 'string') return this.refuse(txn, 'redrive', request, driver);
    const unacked = txn.participants.filter((p) => !p.ackedAt).map((p) => p.name);
    await driver.resume!(txn.id);
    return this.accept(txn.id, 'redrive', request, 'redriven', `re-sent ${txn.decision} to ${unacked.join(', ')}`);
  }

  private async find(id: string): Promise<TransactionEntity> {
    const found = UUID.test(id) ? await this.log.findById(id) : null;
    if (!found) throw new NotFoundException(`transaction ${id} not found`);
    return found;
  }

  /**
   * The driver that may act on `txn` in this process, or why none may. A transaction runs
   * on the replica holding its partition; acting elsewhere would race that replica's copy.
   */
  private driverHere(txn: TransactionEntity): ProtocolDriver | string {
    if (!this.drivers.has(txn.protocol)) return `protocol ${txn.protocol} is not run by this coordinator`;
    const driver = this.drivers.for(txn.protocol);
    if (!driver.resume) return `the ${txn.protocol} driver does not support operator actions yet`;
    if (driver.isActive(txn.id) || this.ownership.owns(txn.partition)) return driver;
    return `transaction ${txn.id} is run by the replica holding partition ${txn.partition} (last owner ${txn.ownerId}), not by ${this.config.coordinatorId}; send the request there`;
  }

  private async accept(id: string, action: OperatorActionKind, request: OperatorRequest, outcome: OperatorActionOutcome, detail: string): Promise<ActionResult> {
    await this.audit.record({ txnId: id, action, actor: request.by, reason: request.reason, outcome, detail });
    return { action, outcome, detail, transaction: (await this.log.findById(id))! };
  }

  private async refuse(txn: TransactionEntity, action: OperatorActionKind, request: OperatorRequest, detail: string): Promise<never> {
    await this.audit.record({ txnId: txn.id, action, actor: request.by, reason: request.reason, outcome: 'refused', detail });
    throw new ConflictException(`${action} refused: ${detail}`);
  }
}
