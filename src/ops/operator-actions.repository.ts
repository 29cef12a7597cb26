/**
 * The audit trail of operator actions, as a port like the decision log's: the ops feature
 * records and reads actions through it and knows nothing of TypeORM.
 */
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { OperatorActionEntity, OperatorActionKind, OperatorActionOutcome } from '../decision-log/operator-action.entity';

export interface NewOperatorAction {
  readonly txnId: string;
  readonly action: OperatorActionKind;
  readonly actor: string;
  readonly reason: string;
  readonly outcome: OperatorActionOutcome;
  readonly detail: string | null;
}

export abstract class OperatorActionsRepository {
  abstract record(action: NewOperatorAction): Promise<OperatorActionEntity>;
  /** Every action on one transaction, oldest first. */
  abstract findForTransaction(txnId: string): Promise<OperatorActionEntity[]>;
}

@Injectable()
export class TypeOrmOperatorActionsRepository extends OperatorActionsRepository {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async record(action: NewOperatorAction): Promise<OperatorActionEntity> {
    const repository = this.dataSource.getRepository(OperatorActionEntity);
    const { identifiers } = await repository.insert(action);
    return repository.findOneByOrFail({ id: identifiers[0].id as string });
  }

  findForTransaction(txnId: string): Promise<OperatorActionEntity[]> {
    return this.dataSource.getRepository(OperatorActionEntity).find({ where: { txnId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }
}
