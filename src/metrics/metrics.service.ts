/**
 * Prometheus metrics for the coordinator. Counters and histograms follow the transaction
 * events the drivers emit once a fact is durable; the in-doubt gauges are read from the
 * decision log at scrape time, because only the log knows about transactions that no
 * replica is running right now (a crashed owner's, say).
 */
import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';
import { ProtocolDrivers } from '../coordinator/protocol-driver';
import { DecisionLogRepository } from '../decision-log/decision-log.repository';
import { TransactionEvent, TransactionEvents } from '../telemetry/transaction-events';

/** From a few milliseconds (a local commit) to minutes (a participant that was down). */
const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/**
 * Phase start times are kept per transaction until the phase ends. A transaction that never
 * ends here (taken over elsewhere, a participant that never acks) must not grow the map
 * forever, so the oldest entries go first once it is full.
 */
const MAX_TRACKED_TRANSACTIONS = 10_000;

class BoundedTimes {
  private readonly times = new Map<string, number>();

  set(txnId: string, at: number): void {
    this.times.delete(txnId);
    this.times.set(txnId, at);
    if (this.times.size > MAX_TRACKED_TRANSACTIONS) this.times.delete(this.times.keys().next().value!);
  }

  take(txnId: string): number | undefined {
    const at = this.times.get(txnId);
    this.times.delete(txnId);
    return at;
  }
}

@Injectable()
export class MetricsService implements OnModuleInit {
  private readonly logger = new Logger(MetricsService.name);
  readonly registry = new Registry();
  private readonly prepareSentAt = new BoundedTimes();
  private readonly decidedAt = new BoundedTimes();

  private readonly started = new Counter({ name: 'txn_started_total', help: 'Transactions whose prepare phase began', labelNames: ['protocol'], registers: [this.registry] });
  private readonly decided = new Counter({ name: 'txn_decided_total', help: 'Decisions logged', labelNames: ['protocol', 'decision'], registers: [this.registry] });
  private readonly decisionLatency = new Histogram({
    name: 'txn_decision_latency_seconds',
    help: 'From the creation of a transaction to its logged decision',
    labelNames: ['protocol', 'decision'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  private readonly phaseLatency = new Histogram({
    name: 'txn_phase_latency_seconds',
    help: 'Duration of each phase: prepare (prepares sent to decision logged), commit (decision logged to every ack)',
    labelNames: ['protocol', 'phase'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [this.registry],
  });
  private readonly unfinished = new Gauge({ name: 'txn_unfinished', help: 'Transactions in the decision log not yet acknowledged by every participant', labelNames: ['protocol'], registers: [this.registry] });
  private readonly oldestUnfinishedAge = new Gauge({ name: 'txn_oldest_unfinished_age_seconds', help: 'Age of the oldest unfinished transaction; 0 when there is none', registers: [this.registry] });
  private readonly recoveries = new Counter({ name: 'txn_recoveries_total', help: 'Transactions resumed from the decision log', labelNames: ['protocol'], registers: [this.registry] });
  private readonly takeovers = new Counter({ name: 'txn_takeovers_total', help: "Transactions taken over from another replica after its lease expired", labelNames: ['protocol'], registers: [this.registry] });
  private readonly votes = new Counter({ name: 'txn_votes_total', help: 'Votes logged, by participant', labelNames: ['participant', 'vote'], registers: [this.registry] });

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly events: TransactionEvents,
    private readonly log: DecisionLogRepository,
    private readonly drivers: ProtocolDrivers,
  ) {
    // Every replica exports the same names; the label tells their series apart once scraped together.
    this.registry.setDefaultLabels({ coordinator: config.coordinatorId });
    collectDefaultMetrics({ register: this.registry, prefix: 'txn_coordinator_' });
    // Series for each served protocol exist from the start, so rate() sees the first increment.
    for (const protocol of drivers.protocols()) {
      this.started.inc({ protocol }, 0);
      this.recoveries.inc({ protocol }, 0);
      this.takeovers.inc({ protocol }, 0);
      for (const decision of ['COMMIT', 'ABORT']) this.decided.inc({ protocol, decision }, 0);
    }
  }

  onModuleInit(): void {
    this.events.subscribe((event) => this.observe(event));
  }

  /** Counts a takeover; the `takenOver` event does this already for takeovers the service emits. */
  recordTakeover(protocol: string): void {
    this.takeovers.inc({ protocol });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, with the in-doubt gauges read from the log just now. */
  async render(): Promise<string> {
    await this.refreshUnfinished();
    return this.registry.metrics();
  }

  private observe(event: TransactionEvent): void {
    const { protocol } = event;
    switch (event.type) {
      case 'prepareSent':
        this.started.inc({ protocol });
        this.prepareSentAt.set(event.txnId, event.at);
        return;
      case 'voted':
        this.votes.inc({ participant: event.participant, vote: event.vote });
        return;
      case 'decided': {
        this.decided.inc({ protocol, decision: event.decision });
        this.decisionLatency.observe({ protocol, decision: event.decision }, seconds(event.at - event.startedAt));
        const prepareStart = this.prepareSentAt.take(event.txnId);
        // A transaction resumed from the log has no prepare start here; its phase is not measured.
        if (prepareStart !== undefined) this.phaseLatency.observe({ protocol, phase: 'prepare' }, seconds(event.at - prepareStart));
        this.decidedAt.set(event.txnId, event.at);
        return;
      }
      case 'acked':
        return;
      case 'completed': {
        const commitStart = this.decidedAt.take(event.txnId);
        if (commitStart !== undefined) this.phaseLatency.observe({ protocol, phase: 'commit' }, seconds(event.at - commitStart));
        return;
      }
      case 'recovered':
        this.recoveries.inc({ protocol });
        return;
      case 'takenOver':
        this.recordTakeover(protocol);
        return;
    }
  }

  private async refreshUnfinished(): Promise<void> {
    try {
      const summary = await this.log.unfinishedSummary();
      this.unfinished.reset();
      for (const protocol of this.drivers.protocols()) this.unfinished.set({ protocol }, 0);
      for (const row of summary) this.unfinished.set({ protocol: row.protocol }, row.count);
      this.oldestUnfinishedAge.set(seconds(Math.max(0, ...summary.map((r) => r.oldestAgeMs))));
    } catch (error) {
      // A scrape must still answer while the database is down; the gauges keep their last values.
      this.logger.warn(`could not read unfinished transactions: ${(error as Error).message}`);
    }
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}
