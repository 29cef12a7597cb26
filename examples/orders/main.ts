/**
 * The orders service: a separate process that joins distributed transactions through the
 * participant SDK. Environment: DATABASE_URL, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX (txn),
 * PARTICIPANT_NAME (orders).
 */
import { runService } from '../common/run-service';
import { ordersService } from './orders.service';

void runService('orders', ordersService);
