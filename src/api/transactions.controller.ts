import { BadRequestException, Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { TransactionsService } from '../coordinator/transactions.service';
import { TransactionState } from '../decision-log/transaction.entity';
import { HEADER_TRACEPARENT } from '../transport/kafka/topics';
import { ProtocolDrivers } from '../coordinator/protocol-driver';
import { PaxosCommitLog } from '../coordinator/paxos-commit/paxos-commit-log';
import { toPaxosCommitEvidence } from './paxos-commit-evidence.view';
import { KNOWN_PROTOCOLS, parseCreateTransaction, parseIdempotencyKey, parseWaitMs } from './create-transaction.request';
import { TransactionView, toTransactionView } from './transaction.view';

const STATES: readonly TransactionState[] = ['PREPARING', 'PRECOMMITTED', 'COMMITTED', 'ABORTED'];
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

@ApiTags('transactions')
@Controller('v1/transactions')
export class TransactionsController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly transactions: TransactionsService,
    private readonly drivers: ProtocolDrivers,
    private readonly paxosCommit: PaxosCommitLog,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Start a distributed transaction; it is durably logged before the response' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'A retry with the same key returns the same transaction' })
  @ApiQuery({ name: 'waitMs', required: false, description: 'Wait up to this long for the decision before answering' })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['protocol', 'participants'],
      properties: {
        protocol: { type: 'string', enum: [...KNOWN_PROTOCOLS] },
        participants: {
          type: 'array',
          items: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, payload: {} } },
        },
        timeoutMs: { type: 'integer', minimum: 1 },
      },
    },
  })
  @ApiResponse({ status: 201, type: TransactionView, description: 'Created' })
  @ApiResponse({ status: 200, type: TransactionView, description: 'An earlier request with the same Idempotency-Key' })
  async create(
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKeyHeader: string | undefined,
    @Headers(HEADER_TRACEPARENT) traceparent: string | undefined,
    @Query('waitMs') waitMsParam: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<TransactionView> {
    const request = parseCreateTransaction(body, this.config, this.drivers.protocols());
    const idempotencyKey = parseIdempotencyKey(idempotencyKeyHeader);
    const waitMs = parseWaitMs(waitMsParam, this.config);
    const traceContext = traceparent && TRACEPARENT.test(traceparent) ? traceparent : null;
    const { created, transaction } = await this.transactions.create(request, idempotencyKey, traceContext);
    if (!created) response.status(200);
    response.location(`/v1/transactions/${transaction.id}`);
    return toTransactionView(waitMs > 0 ? await this.transactions.get(transaction.id, waitMs) : transaction);
  }

  @Get(':id')
  @ApiOperation({ summary: "A transaction's state, decision, votes, acks and timestamps" })
  @ApiQuery({ name: 'waitMs', required: false })
  @ApiResponse({ status: 200, type: TransactionView })
  @ApiResponse({ status: 404, description: 'No such transaction' })
  async get(@Param('id') id: string, @Query('waitMs') waitMsParam: string | undefined): Promise<TransactionView> {
    const txn = await this.transactions.get(id, parseWaitMs(waitMsParam, this.config));
    if (txn.protocol !== 'paxos-commit') return toTransactionView(txn);
    // The evidence is read after the transaction, so it holds at least what led to the decision shown.
    const run = await this.paxosCommit.findRun(txn.id);
    return toTransactionView(txn, run ? toPaxosCommitEvidence(run, await this.paxosCommit.acceptances(txn.id)) : undefined);
  }

  @Get()
  @ApiOperation({ summary: 'Recent transactions, newest first' })
  @ApiQuery({ name: 'state', required: false, enum: STATES })
  @ApiQuery({ name: 'protocol', required: false, enum: [...KNOWN_PROTOCOLS] })
  @ApiQuery({ name: 'limit', required: false, description: '1 to 500, default 50' })
  @ApiResponse({ status: 200, type: [TransactionView] })
  async list(
    @Query('state') state: string | undefined,
    @Query('protocol') protocol: string | undefined,
    @Query('limit') limitParam: string | undefined,
  ): Promise<TransactionView[]> {
    if (state !== undefined && !STATES.includes(state as TransactionState)) throw new BadRequestException(`state must be one of ${STATES.join(', ')}`);
    if (protocol !== undefined && !(KNOWN_PROTOCOLS as readonly string[]).includes(protocol)) {
      throw new BadRequestException(`protocol must be one of ${KNOWN_PROTOCOLS.join(', ')}`);
    }
    const limit = limitParam === undefined ? 50 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new BadRequestException('limit must be an integer between 1 and 500');
    const found = await this.transactions.list({ state: state as TransactionState | undefined, protocol, limit });
    return found.map((txn) => toTransactionView(txn));
  }
}
