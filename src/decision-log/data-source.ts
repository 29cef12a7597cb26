/**
 * One definition of the decision log's database for the app, the tests and the TypeORM CLI.
 * Migrations are the only way the schema changes; `synchronize` stays off everywhere.
 */
import { DataSource, DataSourceOptions } from 'typeorm';
import { DecisionLog1763769600000 } from '../../migrations/1763769600000-decision-log';
import { OwnershipLeases1763856000000 } from '../../migrations/1763856000000-ownership-leases';
import { OperatorActions1763942400000 } from '../../migrations/1763942400000-operator-actions';
import { PaxosCommitEvidence1764030000000 } from '../../migrations/1764030000000-paxos-commit-evidence';
import { ThreePhasePrecommit1764043200000 } from '../../migrations/1764043200000-three-phase-precommit';
import { OperatorActionEntity } from './operator-action.entity';
import { ParticipantRegistrationEntity } from './participant-registration.entity';
import { TransactionParticipantEntity } from './transaction-participant.entity';
import { TransactionEntity } from './transaction.entity';

export const DECISION_LOG_ENTITIES = [TransactionEntity, TransactionParticipantEntity, ParticipantRegistrationEntity, OperatorActionEntity];
export const DECISION_LOG_MIGRATIONS = [DecisionLog1763769600000, OwnershipLeases1763856000000, OperatorActions1763942400000, PaxosCommitEvidence1764030000000, ThreePhasePrecommit1764043200000];

export function decisionLogDataSourceOptions(databaseUrl: string): DataSourceOptions {
  return {
    type: 'postgres',
    url: databaseUrl,
    entities: DECISION_LOG_ENTITIES,
    migrations: DECISION_LOG_MIGRATIONS,
    synchronize: false,
    migrationsRun: false,
    extra: { max: 20 },
  };
}

export async function runMigrations(databaseUrl: string): Promise<string[]> {
  const dataSource = new DataSource(decisionLogDataSourceOptions(databaseUrl));
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await dataSource.destroy();
  }
}
