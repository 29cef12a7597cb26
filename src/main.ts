/**
 * The coordinator process: telemetry first, then configuration, migrations, the HTTP API
 * and the Kafka consumer. Configuration is read here once and handed to Nest.
 */
import { startTelemetry, stopTelemetry } from './telemetry/telemetry';
startTelemetry('txn-coordinator');

import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { runMigrations } from './decision-log/data-source';
import { PartitionOwnership } from './transport/kafka/partition-ownership';
import { PrefixedKafkaServer } from './transport/kafka/prefixed-kafka.server';
import { topicsFor } from './transport/kafka/topics';

async function bootstrap(config: AppConfig): Promise<void> {
  const logger = new Logger('Coordinator');
  const applied = await runMigrations(config.databaseUrl);
  if (applied.length > 0) logger.log(`applied migrations: ${applied.join(', ')}`);

  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { bodyParser: false });
  app.useBodyParser('json', { limit: '4mb' });
  app.enableShutdownHooks();
  app.connectMicroservice(
    {
      strategy: new PrefixedKafkaServer(
        {
          client: { clientId: `coordinator-${config.coordinatorId}`, brokers: [...config.kafkaBrokers] },
          consumer: {
            groupId: `${config.topicPrefix}.coordinators`,
            sessionTimeout: config.kafkaSessionTimeoutMs,
            heartbeatInterval: Math.max(100, Math.floor(config.kafkaSessionTimeoutMs / 5)),
            maxWaitTimeInMs: 20,
          },
          // A new consumer group must not skip replies sent before it first joined; every
          // handler is idempotent, so reading old messages again is harmless.
          subscribe: { fromBeginning: true },
          // Messages of one transaction share a key and so a partition; partitions are independent.
          run: { partitionsConsumedConcurrently: config.kafkaPartitions },
          postfixId: '',
        },
        config.topicPrefix,
        (assignment) => app.get(PartitionOwnership).assign(assignment[topicsFor(config.topicPrefix).coordinator] ?? []),
      ),
    },
    { inheritAppConfig: true },
  );
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder().setTitle('Transaction coordinator').setDescription('2PC over Kafka with a durable decision log').setVersion('1').build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json' });
  // Module init creates the topics the consumer is about to subscribe to.
  await app.init();
  await app.startAllMicroservices();
  await app.listen(config.port, '0.0.0.0');
  const address = app.getHttpServer().address() as { port: number };
  logger.log(`coordinator ${config.coordinatorId} listening on port ${address.port}`);
}

function main(): void {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  bootstrap(config).catch(async (error: Error) => {
    console.error(`coordinator failed to start: ${error.stack ?? error.message}`);
    await stopTelemetry();
    process.exit(1);
  });
}

main();
