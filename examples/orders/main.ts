/**
 * The orders service: a separate process that joins distributed transactions through the
 * participant SDK. Environment: DATABASE_URL, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX (txn),
 * PARTICIPANT_NAME (orders).
 */
// Tracing starts before kafkajs and pg are first required, so their instrumentation applies.
import { startTelemetry } from '../../src/telemetry/telemetry';
startTelemetry('orders');

import { runService } from '../common/run-service';
import { ordersService } from './orders.service';

void runService('orders', ordersService);
