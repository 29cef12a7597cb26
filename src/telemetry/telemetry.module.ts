import { Module } from '@nestjs/common';
import { CoordinatorModule } from '../coordinator/coordinator.module';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/** Metrics listen to the coordinator's transaction events; tracing starts in telemetry.ts, before Nest. */
@Module({
  imports: [CoordinatorModule],
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class TelemetryModule {}
