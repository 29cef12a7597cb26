/**
 * What tests need from the infrastructure that `scripts/test.sh` started (or that the user
 * pointed at with DATABASE_URL / KAFKA_BROKERS): connection strings and fresh databases.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';

export function adminDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests with `npm test`, which starts Postgres');
  return url;
}

export function kafkaBrokers(): string[] {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run the tests with `npm test`, which starts Kafka');
  return brokers.split(',').map((b) => b.trim());
}

/** The URL of database `name` on the server of `adminUrl` (the shared test server unless given). */
export function databaseUrlFor(name: string, adminUrl = adminDatabaseUrl()): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Creates (or empties) a database and returns its URL; on the server of `adminUrl` when given. */
export async function freshDatabase(name: string, adminUrl = adminDatabaseUrl()): Promise<string> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return databaseUrlFor(name, adminUrl);
}

/** A short unique suffix so that topics and databases of one test never meet another's. */
export function uniqueSuffix(): string {
  return randomUUID().replace(/-/g, '').slice(0, 10);
}
