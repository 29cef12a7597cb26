import { Module } from '@nestjs/common';
import { DecisionLogModule } from '../decision-log/decision-log.module';
import { RegistryModule } from '../registry/registry.module';
import { CoordinatorMessagesController } from './coordinator-messages.controller';
import { TransactionEvents } from '../telemetry/transaction-events';
import { DecisionWaiters } from './decision-waiters';
import { FailureDetector } from './paxos-commit/failure-detector';
import { PaxosCommitLog } from './paxos-commit/paxos-commit-log';
import { PaxosCommitDriver } from './paxos-commit/paxos-commit.driver';
import { PAXOS_COMMIT_PROVIDERS } from './paxos-commit/paxos-commit.providers';
import { PROTOCOL_DRIVERS, ProtocolDriver, ProtocolDrivers } from './protocol-driver';
import { DriverDependencies } from './protocol-driver.base';
import { TakeoverService } from './takeover.service';
import { ThreePhaseDriver } from './three-phase/three-phase.driver';
import { TransactionsService } from './transactions.service';
import { TwoPhaseDriver } from './two-phase/two-phase.driver';

@Module({
  imports: [DecisionLogModule, RegistryModule],
  controllers: [CoordinatorMessagesController],
  providers: [
    DriverDependencies,
    TwoPhaseDriver,
    ThreePhaseDriver,
    ...PAXOS_COMMIT_PROVIDERS,
    // Every protocol driver is listed here once; ProtocolDrivers routes by a transaction's protocol.
    { provide: PROTOCOL_DRIVERS, inject: [TwoPhaseDriver, ThreePhaseDriver, PaxosCommitDriver], useFactory: (...drivers: ProtocolDriver[]) => drivers.filter((d) => d.enabled !== false) },
    ProtocolDrivers,
    DecisionWaiters,
    TransactionsService,
    TransactionEvents,
    TakeoverService,
  ],
  exports: [TwoPhaseDriver, PaxosCommitLog, FailureDetector, ProtocolDrivers, TransactionsService, TransactionEvents, DecisionWaiters, DecisionLogModule, RegistryModule],
})
export class CoordinatorModule {}
