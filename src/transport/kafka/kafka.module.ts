import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { APP_CONFIG } from '../../config/config.constants';
import { PartitionOwnership } from './partition-ownership';
import { KafkaPublisher } from './kafka-publisher';
import { KAFKA_TOPICS } from './kafka.constants';
import { topicsFor } from './topics';

@Global()
@Module({
  providers: [{ provide: KAFKA_TOPICS, inject: [APP_CONFIG], useFactory: (config: AppConfig) => topicsFor(config.topicPrefix) }, KafkaPublisher, PartitionOwnership],
  exports: [KAFKA_TOPICS, KafkaPublisher, PartitionOwnership],
})
export class KafkaModule {}
