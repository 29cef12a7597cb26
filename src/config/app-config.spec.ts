import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './app-config';

const base = { DATABASE_URL: 'postgres://u@localhost:5432/db', KAFKA_BROKERS: 'localhost:9092' };

describe('loadConfig', () => {
  it('applies defaults', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({ port: 3000, topicPrefix: 'txn', defaultPrepareTimeoutMs: 10_000, kafkaBrokers: ['localhost:9092'], failpoints: [], traceUiUrl: 'http://localhost:16686' });
  });

  it.each([
    [{ DATABASE_URL: undefined }, /DATABASE_URL is required/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must be a postgres/],
    [{ KAFKA_BROKERS: 'localhost' }, /KAFKA_BROKERS must be a comma-separated list/],
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PREPARE_TIMEOUT_MS: '5' }, /PREPARE_TIMEOUT_MS must be an integer between 10/],
    [{ PREPARE_TIMEOUT_MS: '500000' }, /PREPARE_TIMEOUT_MS must not exceed MAX_PREPARE_TIMEOUT_MS/],
    [{ KAFKA_TOPIC_PREFIX: 'has space' }, /KAFKA_TOPIC_PREFIX must be letters/],
    [{ FAILPOINTS: 'after-nothing' }, /FAILPOINTS names unknown failpoint/],
    [{ TRACE_UI_URL: 'jaeger:16686' }, /TRACE_UI_URL must be an http/],
  ])('fails fast naming the variable: %j', (override, message) => {
    expect(() => loadConfig({ ...base, ...override })).toThrowError(ConfigError);
    expect(() => loadConfig({ ...base, ...override })).toThrowError(message);
  });
});
