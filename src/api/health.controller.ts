import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { PartitionOwnership } from '../transport/kafka/partition-ownership';
import { ProtocolDrivers } from '../coordinator/protocol-driver';
import { FailureDetector } from '../coordinator/paxos-commit/failure-detector';
import { KafkaPublisher } from '../transport/kafka/kafka-publisher';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly publisher: KafkaPublisher,
    private readonly drivers: ProtocolDrivers,
    private readonly ownership: PartitionOwnership,
    private readonly detector: FailureDetector,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Liveness and readiness: the decision log and Kafka are reachable' })
  async health(): Promise<Record<string, unknown>> {
    const database = await this.dataSource.query('SELECT 1').then(
      () => 'up',
      () => 'down',
    );
    const kafka = this.publisher.isConnected() ? 'up' : 'down';
    const body = { status: database === 'up' && kafka === 'up' ? 'ok' : 'degraded', coordinatorId: this.config.coordinatorId, database, kafka, activeTransactions: this.drivers.activeCount(), partitions: this.ownership.ownedPartitions(), ...this.paxosCommit() };
    if (body.status !== 'ok') throw new ServiceUnavailableException(body);
    return body;
  }

  /** On an acceptor replica: the leader its failure detector trusts now. */
  private paxosCommit(): Record<string, unknown> {
    return this.config.paxosCommit ? { paxosCommit: { leader: this.detector.leader(), acceptors: this.config.paxosCommit.acceptors } } : {};
  }
}
