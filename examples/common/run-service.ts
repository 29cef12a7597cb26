/**
 * Shared bootstrap of the example services: validate the environment, create and seed the
 * service's tables, start its TransactionParticipant, and shut down cleanly on SIGTERM or
 * SIGINT (a second signal forces the exit). Each service only supplies its tables and its
 * prepare / commit / abort handlers.
 */
import { Client } from 'pg';
import { ParticipantHandlers, ParticipantLogger, TransactionParticipant } from '../../src/participant-sdk';
import { Env, ServiceConfigError, ServiceEnv, readServiceEnv } from './service-env';

export interface ServiceDefinition<P> {
  /** Creates the service's tables if missing and seeds them when empty; returns a line for the log. */
  setUpDatabase(db: Client): Promise<string>;
  readonly handlers: ParticipantHandlers<P>;
}

/** Builds a service from the environment; throws ServiceConfigError for a bad service-specific variable. */
export type ServiceFactory<P> = (env: Env) => ServiceDefinition<P>;

// A fixed key so that two instances starting at once do not race on CREATE TABLE or the seed.
const SETUP_LOCK_KEY = 0x65786d70;

export async function runService<P>(serviceName: string, factory: ServiceFactory<P>, env: Env = process.env): Promise<void> {
  let logger = serviceLogger(serviceName, false);
  let config: ServiceEnv;
  let definition: ServiceDefinition<P>;
  try {
    config = readServiceEnv(env, serviceName);
    definition = factory(env);
  } catch (error) {
    if (!(error instanceof ServiceConfigError)) throw error;
    logger.error(error.message);
    process.exit(1);
  }
  logger = serviceLogger(serviceName, config.logLevel === 'debug');

  try {
    logger.info(await setUpDatabase(config.databaseUrl, definition));
  } catch (error) {
    logger.error(`could not prepare database: ${(error as Error).message}`);
    process.exit(1);
  }

  const participant = new TransactionParticipant<P>({
    name: config.participantName,
    brokers: config.kafkaBrokers,
    topicPrefix: config.topicPrefix,
    databaseUrl: config.databaseUrl,
    handlers: definition.handlers,
    announceIntervalMs: config.announceIntervalMs,
    queryIntervalMs: config.queryIntervalMs,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    topicPartitions: config.kafkaPartitions,
    logger,
  });
  installShutdown(participant, logger);
  try {
    await participant.start();
  } catch (error) {
    logger.error(`could not start: ${(error as Error).message}`);
    await participant.stop().catch(() => undefined);
    process.exit(1);
  }
  logger.info(`${serviceName} ready: participant ${config.participantName} on ${participant.topic}`);
  process.send?.({ type: 'ready', service: serviceName, participant: config.participantName });
}

async function setUpDatabase<P>(databaseUrl: string, definition: ServiceDefinition<P>): Promise<string> {
  const db = new Client({ connectionString: databaseUrl });
  // Losing the server during set-up fails the pending query, which reports it; without a
  // listener the client's 'error' event would end the process before that.
  db.on('error', () => undefined);
  await db.connect();
  try {
    await db.query('BEGIN');
    await db.query('SELECT pg_advisory_xact_lock($1)', [SETUP_LOCK_KEY]);
    const summary = await definition.setUpDatabase(db);
    await db.query('COMMIT');
    return summary;
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await db.end().catch(() => undefined);
  }
}

function installShutdown(participant: TransactionParticipant<unknown>, logger: ParticipantLogger): void {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal} received: stopping`);
    participant.stop().then(
      () => process.exit(0),
      (error: Error) => {
        logger.error(`shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('unhandledRejection', (reason) => {
    logger.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
    process.exit(1);
  });
}

export function serviceLogger(serviceName: string, debug: boolean): ParticipantLogger {
  const line = (message: string) => `${new Date().toISOString()} [${serviceName}] ${message}`;
  return {
    debug: debug ? (message) => console.log(line(message)) : undefined,
    info: (message) => console.log(line(message)),
    warn: (message) => console.warn(line(message)),
    error: (message) => console.error(line(message)),
  };
}
