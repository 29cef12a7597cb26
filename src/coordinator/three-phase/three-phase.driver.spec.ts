/**
 * The 3PC coordinator driver without Postgres or Kafka: the PreCommit record and the
 * decision are in the log before any message that depends on them leaves, a newer owner
 * fences an old one out, and `ackTimeout` commits only on the failure detector's word.
 */
import { describe, expect, it } from 'vitest';
import { AppConfig } from '../../config/app-config';
import { DecisionLogRepository } from '../../decision-log/decision-log.repository';
import { TransactionEntity } from '../../decision-log/transaction.entity';
import { ParticipantRegistry, RegisteredParticipant } from '../../registry/participant-registry.service';
import { TransactionEvents } from '../../telemetry/transaction-events';
import { Envelope } from '../../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { topicsFor } from '../../transport/kafka/topics';
import { DecisionWaiters } from '../decision-waiters';
import { DriverDependencies } from '../protocol-driver.base';
import { ThreePhaseDriver } from './three-phase.driver';

const RMS = ['rm-a', 'rm-b', 'rm-c'];
const TTL_MS = 40;

function setup(options: { preCommitAllowed?: boolean; registry?: () => RegisteredParticipant[] } = {}) {
  const events: string[] = [];
  const sent: Envelope[] = [];
  let notify: (() => void) | undefined;
  const log = {
    appendVote: async (_t: string, rm: string, vote: string) => void events.push(`log vote ${rm} ${vote}`),
    appendPreCommit: async () => {
      events.push('log precommit');
      return options.preCommitAllowed ?? true;
    },
    appendPreCommitAck: async (_t: string, rm: string) => void events.push(`log precommit-ack ${rm}`),
    appendDecisionAtEpoch: async (_t: string, _e: number, decision: 'COMMIT' | 'ABORT', reason: string) => {
      events.push(`log decision ${decision} (${reason})`);
      return decision;
    },
    appendAck: async (_t: string, rm: string) => void events.push(`log ack ${rm}`),
    markComplete: async () => void events.push('log complete'),
    findById: async () => null,
  } as unknown as DecisionLogRepository;
  const publisher = {
    publish: async (messages: readonly OutboundMessage[]) => {
      for (const m of messages) events.push(`send ${m.envelope.type} ${m.topic.split('.').pop()}`);
      sent.push(...messages.map((m) => m.envelope));
      notify?.();
    },
  } as unknown as KafkaPublisher;
  const fresh = (name: string): RegisteredParticipant => ({ name, protocols: ['3pc'], topic: `t.rm.${name}`, instanceId: 'i1', firstSeenAt: new Date(0), lastSeenAt: new Date(), live: true });
  const registry = {
    onParticipantDown: () => undefined,
    instanceOf: () => 'i1',
    topicOf: () => undefined,
    list: async () => (options.registry ?? (() => RMS.map(fresh)))(),
  } as unknown as ParticipantRegistry;
  const config = { coordinatorId: 'c1', failpoints: [], precommitAckTimeoutMs: 20, participantTtlMs: TTL_MS, resendIntervalMs: 60_000 } as unknown as AppConfig;
  const driver = new ThreePhaseDriver(new DriverDependencies(config, topicsFor('t'), log, publisher, registry, new DecisionWaiters(), new TransactionEvents()));
  const sentOne = (predicate: (e: Envelope) => boolean): Promise<Envelope> =>
    new Promise((resolve) => {
      const check = () => {
        const found = sent.find(predicate);
        if (found) resolve(found);
      };
      notify = check;
      check();
    });
  return { events, sent, driver, sentOne, fresh };
}

const txn = { id: 't1', protocol: '3pc', epoch: 2, partition: 0, timeoutMs: 5000, traceContext: null, createdAt: new Date(), participants: RMS.map((name, position) => ({ name, position, payload: { name } })) } as unknown as TransactionEntity;
const from = (rm: string, type: 'VOTE' | 'PRECOMMIT_ACK' | 'ACK', body: object) =>
  ({ v: 1, type, txnId: 't1', protocol: '3pc', from: rm, epoch: 2, sentAt: new Date().toISOString(), body }) as Envelope;

async function precommitting(s: ReturnType<typeof setup>) {
  await s.driver.begin(txn);
  for (const rm of RMS) await s.driver.deliver(from(rm, 'VOTE', { vote: 'YES' }));
}

describe('3pc coordinator driver', () => {
  it('logs PreCommit before any PRECOMMIT leaves, and the decision before any COMMIT', async () => {
    const s = setup();
    await precommitting(s);
    for (const rm of RMS) await s.driver.deliver(from(rm, 'PRECOMMIT_ACK', { recoveryEpoch: { round: 0, rm: '' } }));
    for (const rm of RMS) await s.driver.deliver(from(rm, 'ACK', { outcome: 'COMMIT' }));
    const { events, sent } = s;
    expect(sent[0]).toMatchObject({ type: 'PREPARE', epoch: 2, body: { payload: { name: 'rm-a' }, timeoutMs: 5000, participants: RMS, participantTtlMs: TTL_MS } });
    expect(events.indexOf('log precommit')).toBeLessThan(events.indexOf('send PRECOMMIT rm-a'));
    expect(events.indexOf('log vote rm-c YES')).toBeLessThan(events.indexOf('send PRECOMMIT rm-a'));
    expect(events.findIndex((e) => e.startsWith('log decision COMMIT'))).toBeLessThan(events.indexOf('send COMMIT rm-a'));
    expect(events.slice(-2)).toEqual(['log ack rm-c', 'log complete']);
    expect(sent.find((e) => e.type === 'PRECOMMIT')?.body).toEqual({ recoveryEpoch: { round: 0, rm: '' }, role: 'coordinator', timeoutMs: 20 + TTL_MS + 50 });
    expect(s.driver.isActive('t1')).toBe(false);
  });

  it('aborts on a NO vote, keeping the participant reason apart from the decision reason', async () => {
    const s = setup();
    await s.driver.begin(txn);
    await s.driver.deliver(from('rm-b', 'VOTE', { vote: 'NO', reason: 'out of stock' }));
    expect(s.events).toContain('log vote rm-b NO');
    expect(s.events).toContain('log decision ABORT (rm-b voted no: out of stock)');
    expect(s.sent.filter((e) => e.type === 'ABORT').map((e) => e.body)).toEqual([{ role: 'coordinator' }, { role: 'coordinator' }, { role: 'coordinator' }]);
    expect(s.events).not.toContain('log precommit');
  });

  it('sends nothing once a newer owner holds the transaction', async () => {
    const s = setup({ preCommitAllowed: false });
    await precommitting(s);
    expect(s.sent.map((e) => e.type)).toEqual(['PREPARE', 'PREPARE', 'PREPARE']);
    expect(s.driver.isActive('t1')).toBe(false);
  });

  it('commits on ackTimeout once the registry, still hearing others, reports the silent participant gone', async () => {
    const long = new Date(Date.now() - 10 * TTL_MS);
    const s = setup({ registry: () => [s.fresh('rm-a'), s.fresh('rm-b'), { ...s.fresh('rm-c'), lastSeenAt: long, live: false }] });
    await precommitting(s);
    for (const rm of ['rm-a', 'rm-b']) await s.driver.deliver(from(rm, 'PRECOMMIT_ACK', { recoveryEpoch: { round: 0, rm: '' } }));
    await s.sentOne((e) => e.type === 'COMMIT');
    expect(s.events.find((e) => e.startsWith('log decision'))).toBe('log decision COMMIT (every participant prepared; rm-c crashed before acknowledging PreCommit)');
  });

  it('does not take a stale registry for evidence: it steps down into doubt and asks instead', async () => {
    const long = new Date(Date.now() - 10 * TTL_MS);
    const s = setup({ registry: () => RMS.map((name) => ({ ...s.fresh(name), lastSeenAt: long, live: false })) });
    await precommitting(s);
    for (const rm of ['rm-a', 'rm-b']) await s.driver.deliver(from(rm, 'PRECOMMIT_ACK', { recoveryEpoch: { round: 0, rm: '' } }));
    await s.sentOne((e) => e.type === 'DECISION_REQ');
    expect(s.events.some((e) => e.startsWith('log decision'))).toBe(false);
    expect(s.sent.filter((e) => e.type === 'DECISION_REQ').map((e) => e.body)).toEqual([{ role: 'coordinator' }, { role: 'coordinator' }, { role: 'coordinator' }]);
    s.driver.onApplicationShutdown();
  });
});
