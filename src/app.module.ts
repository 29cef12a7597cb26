import { DynamicModule, Module } from '@nestjs/common';
import { ApiModule } from './api/api.module';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { CoordinatorModule } from './coordinator/coordinator.module';
import { OpsModule } from './ops/ops.module';
import { MetricsModule } from './metrics/metrics.module';
import { KafkaModule } from './transport/kafka/kafka.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: AppModule, imports: [ConfigModule.forRoot(config), KafkaModule, CoordinatorModule, ApiModule, MetricsModule, OpsModule] };
  }
}
