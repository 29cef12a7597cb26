import { Module } from '@nestjs/common';
import { CoordinatorModule } from '../coordinator/coordinator.module';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/**
 * Metrics listen to the coordinator's transaction events and read its drivers, so they sit
 * above the coordinator; tracing (telemetry/) sits below it and starts before Nest.
 */
@Module({
  imports: [CoordinatorModule],
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
