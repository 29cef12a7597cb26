/**
 * The leader driver without Kafka or Postgres: a leader round is durable before its phase 1a
 * leaves, the decision is in the shared log before any outcome leaves, and a takeover
 * proposes what a majority of acceptors reports.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AppConfig } from '../../config/app-config';
import { DecisionLogRepository } from '../../decision-log/decision-log.repository';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { BALLOT_ZERO, Membership } from '../../protocols/paxos-commit/messages';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { TransactionEvents } from '../../telemetry/transaction-events';
import { EnvelopeOf } from '../../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { topicsFor } from '../../transport/kafka/topics';
import { DecisionWaiters } from '../decision-waiters';
import { AcceptorStore } from './acceptor-store';
import { FailureDetector } from './failure-detector';
import { LeaderDriver } from './leader.driver';
import { PaxosCommitLog, RunClaim } from './paxos-commit-log';

const membership: Membership = { rms: ['inventory', 'payments'], acceptors: ['c1', 'c2', 'c3'] };
const drivers: LeaderDriver[] = [];

afterEach(() => drivers.splice(0).forEach((d) => d.onApplicationShutdown()));

function setup(claim: RunClaim, options: { logged?: 'COMMIT' | 'ABORT'; round?: number } = {}) {
  const events: string[] = [];
  const sent: OutboundMessage[] = [];
  const store = {
    leaderRecords: async () => (options.round ? [{ type: 'round', round: options.round }] : []),
    persistRound: async (_txnId: string, round: number) => void events.push(`persist round ${round}`),
  } as unknown as AcceptorStore;
  const log = {
    claimRun: async () => claim,
    recordPhase2b: async (_t: string, acceptor: string) => void events.push(`evidence ${acceptor}`),
    recordDecision: async (_t: string, decision: string, leader: string) => void events.push(`decided by ${leader}`),
    findRun: async () => null,
    complete: async () => false,
    ageMs: async () => 0,
  } as unknown as PaxosCommitLog;
  const txnLog = {
    appendVote: async (_t: string, rm: string, vote: string) => void events.push(`vote ${rm} ${vote}`),
    appendDecision: async (_t: string, decision: 'COMMIT' | 'ABORT') => {
      events.push(`log ${decision}`);
      return options.logged ?? decision;
    },
  } as unknown as DecisionLogRepository;
  const publisher = {
    publish: async (messages: readonly OutboundMessage[]) => {
      for (const m of messages) events.push(`send ${m.envelope.type} ${m.topic}`);
      sent.push(...messages);
    },
  } as unknown as KafkaPublisher;
  const config = {
    coordinatorId: 'c2',
    topicPrefix: 't',
    failpoints: [],
    resendIntervalMs: 60_000,
    paxosCommit: { acceptors: membership.acceptors, retryIntervalMs: 60_000 },
  } as unknown as AppConfig;
  const registry = { topicOf: () => undefined } as unknown as ParticipantRegistry;
  const detector = { isLeader: () => true } as unknown as FailureDetector;
  const driver = new LeaderDriver(config, topicsFor('t'), store, log, txnLog, publisher, registry, new DecisionWaiters(), new TransactionEvents(), detector);
  drivers.push(driver);
  return { driver, events, sent };
}

const txn = {
  id: 'x1',
  epoch: 1,
  timeoutMs: 60_000,
  traceContext: null,
  createdAt: new Date(),
  participants: [
    { name: 'inventory', payload: { sku: 'a' } },
    { name: 'payments', payload: { account: 'b' } },
  ],
} as unknown as TransactionEntity;

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
const envelope = <T extends 'PHASE1B' | 'PHASE2B'>(type: T, from: string, body: EnvelopeOf<T>['body']) =>
  ({ v: 1, type, txnId: 'x1', protocol: 'paxos-commit', from, epoch: 0, sentAt: new Date().toISOString(), body }) as EnvelopeOf<T>;

describe('leader driver', () => {
  it('begins a transaction nobody began: PREPARE names the acceptors and this leader', async () => {
    const { driver, sent } = setup({ began: true });
    await driver.start(txn);
    await settle();
    expect(sent.map((m) => m.topic)).toEqual(['t.rm.inventory', 't.rm.payments']);
    expect(sent[0].envelope).toMatchObject({ type: 'PREPARE', body: { payload: { sku: 'a' }, timeoutMs: 60_000, membership, leader: 'c2' } });
  });

  it('logs the decision, with the evidence and the votes, before any outcome leaves', async () => {
    const { driver, events } = setup({ began: true });
    await driver.start(txn);
    const entries = [{ rm: 'inventory', value: 'Prepared' as const }, { rm: 'payments', value: 'Prepared' as const }];
    driver.deliver(envelope('PHASE2B', 'c1', { ballot: BALLOT_ZERO, entries }));
    driver.deliver(envelope('PHASE2B', 'c3', { ballot: BALLOT_ZERO, entries }));
    await settle();
    expect(events.slice(events.indexOf('evidence c1'))).toEqual([
      'evidence c1',
      'evidence c3',
      'vote inventory YES',
      'vote payments YES',
      'log COMMIT',
      'decided by c2',
      'send COMMIT t.rm.inventory',
      'send COMMIT t.rm.payments',
    ]);
  });

  it('takes over with a round above every one it used, durable before phase 1a, and proposes what a majority accepted', async () => {
    const { driver, events, sent } = setup({ began: false, membership, previousLeader: 'c1' }, { round: 4 });
    await driver.start(txn);
    await settle();
    expect(events.slice(0, 4)).toEqual(['persist round 5', 'send PHASE1A t.acceptor.c1', 'send PHASE1A t.acceptor.c2', 'send PHASE1A t.acceptor.c3']);
    const ballot = { round: 5, replica: 'c2' };
    const reports = [{ rm: 'inventory', maxVBal: BALLOT_ZERO, maxVal: 'Prepared' as const }, { rm: 'payments' }];
    driver.deliver(envelope('PHASE1B', 'c2', { ballot, promised: true, maxBal: ballot, reports }));
    driver.deliver(envelope('PHASE1B', 'c3', { ballot, promised: true, maxBal: ballot, reports: [{ rm: 'inventory' }, { rm: 'payments' }] }));
    await settle();
    const phase2a = sent.filter((m) => m.envelope.type === 'PHASE2A');
    expect(phase2a).toHaveLength(3);
    expect(phase2a[0].envelope.body).toMatchObject({ ballot, entries: [{ rm: 'inventory', value: 'Prepared' }, { rm: 'payments', value: 'Aborted' }] });
  });

  it('sends nothing when the shared log holds another decision (a broken invariant)', async () => {
    const { driver, sent } = setup({ began: true }, { logged: 'ABORT' });
    await driver.start(txn);
    const entries = [{ rm: 'inventory', value: 'Prepared' as const }, { rm: 'payments', value: 'Prepared' as const }];
    driver.deliver(envelope('PHASE2B', 'c1', { ballot: BALLOT_ZERO, entries }));
    driver.deliver(envelope('PHASE2B', 'c3', { ballot: BALLOT_ZERO, entries }));
    await settle();
    expect(sent.some((m) => m.envelope.type === 'COMMIT' || m.envelope.type === 'ABORT')).toBe(false);
  });
});
