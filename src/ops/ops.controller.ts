import { BadRequestException, Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { TransactionView, toTransactionView } from '../api/transaction.view';
import { ActionResult, OperatorActionsService, parseOperatorRequest } from './operator-actions.service';
import { OpsQueriesService } from './ops-queries.service';
import { OpsSummaryView, TimelineView, UnfinishedView } from './ops-views';

const OPERATOR_BODY = {
  schema: {
    type: 'object',
    required: ['by', 'reason'],
    properties: { by: { type: 'string', description: 'Who asks' }, reason: { type: 'string', description: 'Why; kept in the audit trail' } },
  },
};

interface ActionView {
  readonly action: string;
  readonly outcome: string;
  readonly detail: string;
  readonly transaction: TransactionView;
}

const toActionView = (result: ActionResult): ActionView => ({ ...result, transaction: toTransactionView(result.transaction) });

@ApiTags('operations')
@Controller('v1')
export class OpsController {
  constructor(
    private readonly queries: OpsQueriesService,
    private readonly actions: OperatorActionsService,
  ) {}

  @Get('transactions/:id/timeline')
  @ApiOperation({ summary: "A transaction's story: creation, votes, decision, acks, completion and operator actions, in time order, with its trace id" })
  @ApiResponse({ status: 200, type: TimelineView })
  @ApiResponse({ status: 404, description: 'No such transaction' })
  timeline(@Param('id') id: string): Promise<TimelineView> {
    return this.queries.timeline(id);
  }

  @Post('transactions/:id/abort')
  @HttpCode(200)
  @ApiOperation({ summary: 'Abort a transaction that has no decision yet; refused (409) once a decision is logged' })
  @ApiBody(OPERATOR_BODY)
  @ApiResponse({ status: 409, description: 'A decision is logged, or another replica runs the transaction; recorded as refused' })
  async abort(@Param('id') id: string, @Body() body: unknown): Promise<ActionView> {
    const request = parseOperatorRequest(body);
    return toActionView(await this.actions.abort(id, request));
  }

  @Post('transactions/:id/redrive')
  @HttpCode(200)
  @ApiOperation({ summary: 'Re-send the logged decision to participants that have not acknowledged it' })
  @ApiBody(OPERATOR_BODY)
  @ApiResponse({ status: 409, description: 'No decision yet, or already complete; recorded as refused' })
  async redrive(@Param('id') id: string, @Body() body: unknown): Promise<ActionView> {
    const request = parseOperatorRequest(body);
    return toActionView(await this.actions.redrive(id, request));
  }

  @Get('ops/unfinished')
  @ApiOperation({ summary: 'Transactions not yet acknowledged by every participant, oldest first, with their age' })
  @ApiQuery({ name: 'limit', required: false, description: '1 to 1000, default 100' })
  @ApiResponse({ status: 200, type: [UnfinishedView] })
  unfinished(@Query('limit') limitParam: string | undefined): Promise<UnfinishedView[]> {
    const limit = limitParam === undefined || limitParam === '' ? 100 : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BadRequestException('limit must be an integer between 1 and 1000');
    return this.queries.unfinished(limit);
  }

  @Get('ops/summary')
  @ApiOperation({ summary: 'Transactions per protocol and state, and the unfinished ones per protocol' })
  @ApiResponse({ status: 200, type: OpsSummaryView })
  summary(): Promise<OpsSummaryView> {
    return this.queries.summary();
  }
}
