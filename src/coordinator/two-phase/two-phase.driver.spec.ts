/**
 * The 2PC coordinator driver on the runtime, without Postgres or Kafka: a decision write that
 * fails is retried and nothing is sent before it holds; a decision write that finds another
 * decision logged carries out the logged one, and the transaction keeps answering.
 */
import { describe, expect, it } from 'vitest';
import { AppConfig } from '../../config/app-config';
import { DecisionLogRepository } from '../../decision-log/decision-log.repository';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { TransactionEvents } from '../../telemetry/transaction-events';
import { Envelope } from '../../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { topicsFor } from '../../transport/kafka/topics';
import { DecisionWaiters } from '../decision-waiters';
import { DriverDependencies } from '../protocol-driver.base';
import { TwoPhaseDriver } from './two-phase.driver';

const RMS = ['rm-a', 'rm-b'];
const TXN_ID = '00000000-0000-4000-8000-000000000001';

interface Options {
  /** What each decision write does, in turn: throw, or return the decision the log holds. */
  readonly decisionWrites?: ('fail' | 'COMMIT' | 'ABORT' | 'same')[];
}

function setup(options: Options = {}) {
  const events: string[] = [];
  const sent: Envelope[] = [];
  const waiting: (() => void)[] = [];
  const writes = [...(options.decisionWrites ?? [])];
  let loggedDecision: 'COMMIT' | 'ABORT' | null = null;
  const entry = (): TransactionEntity =>
    ({
      id: TXN_ID,
      protocol: '2pc',
      epoch: 1,
      partition: 0,
      timeoutMs: 60_000,
      traceContext: null,
      createdAt: new Date(),
      decision: loggedDecision,
      decisionReason: loggedDecision ? 'logged first' : null,
      completedAt: null,
      participants: RMS.map((name, position) => ({ name, position, payload: null, vote: 'YES', voteReason: null, ackedAt: null })),
    }) as unknown as TransactionEntity;
  const log = {
    appendVote: async (_t: string, rm: string, vote: string) => void events.push(`log vote ${rm} ${vote}`),
    appendDecision: async (_t: string, decision: 'COMMIT' | 'ABORT') => {
      const next = writes.shift() ?? 'same';
      if (next === 'fail') {
        events.push('log decision failed');
        throw new Error('connection terminated unexpectedly');
      }
      loggedDecision = next === 'same' ? decision : next;
      events.push(`log decision ${loggedDecision}`);
      return loggedDecision;
    },
    appendAck: async (_t: string, rm: string) => void events.push(`log ack ${rm}`),
    markComplete: async () => void events.push('log complete'),
    findById: async () => entry(),
  } as unknown as DecisionLogRepository;
  const publisher = {
    publish: async (messages: readonly OutboundMessage[]) => {
      for (const m of messages) events.push(`send ${m.envelope.type} ${m.topic.split('.').pop()}`);
      sent.push(...messages.map((m) => m.envelope));
      for (const wake of waiting.splice(0)) wake();
    },
  } as unknown as KafkaPublisher;
  const registry = { onParticipantDown: () => undefined, topicOf: () => undefined } as unknown as ParticipantRegistry;
  const config = { coordinatorId: 'c1', failpoints: [], resendIntervalMs: 60_000 } as unknown as AppConfig;
  const driver = new TwoPhaseDriver(new DriverDependencies(config, topicsFor('t'), log, publisher, registry, new DecisionWaiters(), new TransactionEvents()));
  const sentCount = (type: string, count: number): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (sent.filter((e) => e.type === type).length >= count) resolve();
        else waiting.push(check);
      };
      check();
    });
  return { events, sent, driver, sentCount, entry };
}

const from = (rm: string, type: 'VOTE' | 'ACK' | 'QUERY', body: object) =>
  ({ v: 1, type, txnId: TXN_ID, protocol: '2pc', from: rm, epoch: 1, sentAt: new Date().toISOString(), body }) as Envelope;

async function allVoted(s: ReturnType<typeof setup>): Promise<void> {
  await s.driver.begin(s.entry());
  for (const rm of RMS) await s.driver.deliver(from(rm, 'VOTE', { vote: 'YES' }));
}

describe('TwoPhaseDriver on the runtime', () => {
  it('retries a decision write that failed, and sends COMMIT only once it is logged', async () => {
    const s = setup({ decisionWrites: ['fail', 'fail', 'same'] });
    await allVoted(s);
    expect(s.sent.filter((e) => e.type === 'COMMIT')).toHaveLength(0);
    await s.sentCount('COMMIT', RMS.length);
    const firstCommit = s.events.findIndex((e) => e.startsWith('send COMMIT'));
    expect(s.events.filter((e) => e === 'log decision failed')).toHaveLength(2);
    expect(s.events.indexOf('log decision COMMIT')).toBeGreaterThan(-1);
    expect(s.events.indexOf('log decision COMMIT')).toBeLessThan(firstCommit);
    expect(s.sent.filter((e) => e.type === 'COMMIT')).toHaveLength(RMS.length);
  });

  it('carries out the logged decision when the log already holds another one, and keeps answering', async () => {
    const s = setup({ decisionWrites: ['ABORT'] });
    await allVoted(s);
    await s.sentCount('ABORT', RMS.length);
    expect(s.sent.filter((e) => e.type === 'COMMIT')).toHaveLength(0);
    expect(s.driver.isActive(TXN_ID)).toBe(true);
    // A participant in doubt asks: it hears the logged decision from the running transaction.
    await s.driver.deliver(from('rm-a', 'QUERY', {}));
    await s.sentCount('ABORT', RMS.length + 1);
    for (const rm of RMS) await s.driver.deliver(from(rm, 'ACK', { outcome: 'ABORT' }));
    expect(s.events).toContain('log complete');
    expect(s.driver.isActive(TXN_ID)).toBe(false);
  });
});
