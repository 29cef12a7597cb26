/**
 * The payments service: a separate process that joins distributed transactions through the
 * participant SDK. Environment: DATABASE_URL, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX (txn),
 * PARTICIPANT_NAME (payments), PAYMENTS_SEED (e.g. "acct-1:10000,acct-2:500"),
 * MERCHANT_ACCOUNT (merchant; starts at 0).
 */
// Tracing starts before kafkajs and pg are first required, so their instrumentation applies.
import { startTelemetry } from '../../src/telemetry/telemetry';
startTelemetry('payments');

import { runService } from '../common/run-service';
import { paymentsService } from './payments.service';

void runService('payments', paymentsService);
