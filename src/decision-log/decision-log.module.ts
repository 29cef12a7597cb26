import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { decisionLogDataSourceOptions } from './data-source';
import { DecisionLogRepository } from './decision-log.repository';
import { GroupCommitter } from './group-commit';
import { TypeOrmDecisionLogRepository } from './typeorm-decision-log.repository';

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => decisionLogDataSourceOptions(config.databaseUrl),
    }),
  ],
  providers: [
    {
      provide: GroupCommitter,
      inject: [DataSource, APP_CONFIG],
      useFactory: (dataSource: DataSource, config: AppConfig) => new GroupCommitter(dataSource, config.groupCommitMaxBatch),
    },
    { provide: DecisionLogRepository, useClass: TypeOrmDecisionLogRepository },
  ],
  exports: [DecisionLogRepository, GroupCommitter],
})
export class DecisionLogModule {}
