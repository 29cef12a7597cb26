/**
 * The inventory service: a separate process that joins distributed transactions through the
 * participant SDK. Environment: DATABASE_URL, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX (txn),
 * PARTICIPANT_NAME (inventory), INVENTORY_SEED (e.g. "sku-1:100,sku-2:50").
 */
// Tracing starts before kafkajs and pg are first required, so their instrumentation applies.
import { startTelemetry } from '../../src/telemetry/telemetry';
startTelemetry('inventory');

import { runService } from '../common/run-service';
import { inventoryService } from './inventory.service';

void runService('inventory', inventoryService);
