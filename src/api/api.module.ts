import { Module } from '@nestjs/common';
import { CoordinatorModule } from '../coordinator/coordinator.module';
import { HealthController } from './health.controller';
import { ParticipantsController } from './participants.controller';
import { TransactionsController } from './transactions.controller';

@Module({
  imports: [CoordinatorModule],
  controllers: [TransactionsController, ParticipantsController, HealthController],
})
export class ApiModule {}
