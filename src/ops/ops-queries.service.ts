/** The read side of operations: timelines, the unfinished listing and outcome counts. */
import { Injectable, NotFoundException } from '@nestjs/common';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { OperatorActionsRepository } from './operator-actions.repository';
import { OpsSummaryView, TimelineView, UnfinishedView, toTimeline, toUnfinished } from './ops-views';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

@Injectable()
export class OpsQueriesService {
  constructor(
    private readonly log: DecisionLogRepository,
    private readonly audit: OperatorActionsRepository,
  ) {}

  async timeline(id: string): Promise<TimelineView> {
    const txn = UUID.test(id) ? await this.log.findById(id) : null;
    if (!txn) throw new NotFoundException(`transaction ${id} not found`);
    return toTimeline(txn, await this.audit.findForTransaction(id));
  }

  async unfinished(limit: number): Promise<UnfinishedView[]> {
    const found = await this.log.findUnfinished(limit);
    const now = Date.now();
    return found.map((txn) => toUnfinished(txn, now));
  }

  async summary(): Promise<OpsSummaryView> {
    const [outcomes, unfinished] = await Promise.all([this.log.countByProtocolAndState(), this.log.unfinishedSummary()]);
    return { outcomes, unfinished };
  }
}
