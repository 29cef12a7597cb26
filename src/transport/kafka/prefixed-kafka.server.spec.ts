/**
 * Which consumer events give partitions up. A broker restart makes kafkajs crash the
 * consumer with `restart: true`, passing through STOP and DISCONNECT first; none of that may
 * report an empty assignment, or every running transaction is released and later ended by
 * recovery. A new assignment, a crash for good, and stopping at shutdown do report.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PrefixedKafkaServer } from './prefixed-kafka.server';

const EVENTS = { GROUP_JOIN: 'consumer.group_join', STOP: 'consumer.stop', DISCONNECT: 'consumer.disconnect', CRASH: 'consumer.crash', CONNECT: 'consumer.connect', REBALANCING: 'consumer.rebalancing' };

function serverWithFakeConsumer() {
  const reported: Record<string, readonly number[]>[] = [];
  const server = new PrefixedKafkaServer({}, 'txn', (assignment) => reported.push({ ...assignment }));
  const consumer = Object.assign(new EventEmitter(), { events: EVENTS, disconnect: async () => void consumer.emit(EVENTS.STOP, {}) });
  const internals = server as unknown as { consumer: unknown; producer: unknown; registerConsumerEventListeners(): void };
  internals.consumer = consumer;
  internals.producer = { disconnect: async () => undefined };
  internals.registerConsumerEventListeners();
  return { server, consumer, reported };
}

describe('PrefixedKafkaServer assignment reports', () => {
  it('keeps the partitions through a crash that kafkajs restarts (stop, disconnect, crash), and reports the rejoin', () => {
    const { consumer, reported } = serverWithFakeConsumer();
    consumer.emit(EVENTS.GROUP_JOIN, { payload: { memberAssignment: { 'txn.coordinator': [0, 1] } } });
    consumer.emit(EVENTS.STOP, {});
    consumer.emit(EVENTS.DISCONNECT, {});
    consumer.emit(EVENTS.CRASH, { payload: { error: new Error('broker gone'), restart: true } });
    consumer.emit(EVENTS.GROUP_JOIN, { payload: { memberAssignment: { 'txn.coordinator': [0, 1] } } });
    expect(reported).toEqual([{ 'txn.coordinator': [0, 1] }, { 'txn.coordinator': [0, 1] }]);
  });

  it('gives the partitions up on a crash that will not restart', () => {
    const { consumer, reported } = serverWithFakeConsumer();
    consumer.emit(EVENTS.GROUP_JOIN, { payload: { memberAssignment: { 'txn.coordinator': [2] } } });
    consumer.emit(EVENTS.CRASH, { payload: { error: new Error('not retriable'), restart: false } });
    expect(reported).toEqual([{ 'txn.coordinator': [2] }, {}]);
  });

  it('gives the partitions up when the server closes', async () => {
    const { server, consumer, reported } = serverWithFakeConsumer();
    consumer.emit(EVENTS.GROUP_JOIN, { payload: { memberAssignment: { 'txn.coordinator': [3] } } });
    await server.close();
    expect(reported.at(-1)).toEqual({});
  });
});
