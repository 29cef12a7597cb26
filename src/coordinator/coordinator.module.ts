import { Module } from '@nestjs/common';
import { DecisionLogModule } from '../decision-log/decision-log.module';
import { RegistryModule } from '../registry/registry.module';
import { CoordinatorMessagesController } from '../transport/kafka/coordinator-messages.controller';
import { TransactionEvents } from '../telemetry/transaction-events';
import { DecisionWaiters } from './decision-waiters';
import { PROTOCOL_DRIVERS, ProtocolDriver, ProtocolDrivers } from './protocol-driver';
import { TakeoverService } from './takeover.service';
import { TransactionsService } from './transactions.service';
import { TwoPhaseDriver } from './two-phase.driver';

@Module({
  imports: [DecisionLogModule, RegistryModule],
  controllers: [CoordinatorMessagesController],
  providers: [
    TwoPhaseDriver,
    // Every protocol driver is listed here once; ProtocolDrivers routes by a transaction's protocol.
    { provide: PROTOCOL_DRIVERS, inject: [TwoPhaseDriver], useFactory: (...drivers: ProtocolDriver[]) => drivers },
    ProtocolDrivers,
    DecisionWaiters,
    TransactionsService,
    TransactionEvents,
    TakeoverService,
  ],
  exports: [TwoPhaseDriver, ProtocolDrivers, TransactionsService, TransactionEvents, DecisionWaiters, DecisionLogModule, RegistryModule],
})
export class CoordinatorModule {}
