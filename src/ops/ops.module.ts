import { Module } from '@nestjs/common';
import { CoordinatorModule } from '../coordinator/coordinator.module';
import { OperatorActionsRepository, TypeOrmOperatorActionsRepository } from './operator-actions.repository';
import { OperatorActionsService } from './operator-actions.service';
import { OpsPageController } from './ops-page.controller';
import { OpsQueriesService } from './ops-queries.service';
import { OpsController } from './ops.controller';

/** Operations: timelines, the unfinished listing, audited operator actions and the ops page. */
@Module({
  imports: [CoordinatorModule],
  controllers: [OpsController, OpsPageController],
  providers: [OpsQueriesService, OperatorActionsService, { provide: OperatorActionsRepository, useClass: TypeOrmOperatorActionsRepository }],
})
export class OpsModule {}
