/**
 * The acceptor driver's durability rule without Kafka or Postgres: an acceptor's record is
 * committed before any reply revealing it leaves, a failed write reveals nothing, and a
 * restarted acceptor answers from what it had made durable.
 */
import { describe, expect, it } from 'vitest';
import { AppConfig } from '../../config/app-config';
import { AcceptorRecord } from '../../protocols/paxos-commit/acceptor';
import { BALLOT_ZERO, Membership } from '../../protocols/paxos-commit/messages';
import { ParticipantRegistry } from '../../registry/participant-registry.service';
import { EnvelopeOf } from '../../transport/kafka/envelope';
import { KafkaPublisher, OutboundMessage } from '../../transport/kafka/kafka-publisher';
import { topicsFor } from '../../transport/kafka/topics';
import { AcceptorStore } from './acceptor-store';
import { AcceptorDriver } from './acceptor.driver';
import { ManualClock } from '../../runtime/manual-clock';

const membership: Membership = { rms: ['inventory', 'payments'], acceptors: ['c1', 'c2', 'c3'] };

function setup(options: { phase2bToRms?: boolean; failWrites?: boolean; failFirstWrites?: number } = {}) {
  let failFirst = options.failFirstWrites ?? 0;
  const clock = new ManualClock();
  const events: string[] = [];
  const sent: OutboundMessage[] = [];
  const durable = new Map<string, AcceptorRecord[]>();
  const store = {
    load: async (txnId: string) => durable.get(txnId) ?? [],
    persist: async (txnId: string, record: AcceptorRecord) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (options.failWrites || failFirst-- > 0) throw new Error('database down');
      durable.set(txnId, [...(durable.get(txnId) ?? []), record]);
      events.push(`persist ${Object.keys(record.instances).join(',')}`);
    },
  } as unknown as AcceptorStore;
  const publisher = {
    publish: async (messages: readonly OutboundMessage[]) => {
      for (const m of messages) events.push(`send ${m.envelope.type} ${m.topic}`);
      sent.push(...messages);
    },
  } as unknown as KafkaPublisher;
  const registry = { topicOf: () => undefined } as unknown as ParticipantRegistry;
  const config = { coordinatorId: 'c2', topicPrefix: 't', paxosCommit: { phase2bToRms: options.phase2bToRms ?? false } } as unknown as AppConfig;
  const make = () => new AcceptorDriver(config, topicsFor('t'), store, publisher, registry, clock);
  return { driver: make(), make, events, sent, durable, clock };
}

const vote = (rm: string, value: 'Prepared' | 'Aborted', reason?: string): EnvelopeOf<'PHASE2A'> => ({
  v: 1,
  type: 'PHASE2A',
  txnId: 'x1',
  protocol: 'paxos-commit',
  from: rm,
  epoch: 0,
  sentAt: new Date().toISOString(),
  body: { membership, ballot: BALLOT_ZERO, leader: 'c1', entries: [{ rm, value, ...(reason ? { reason } : {}) }] },
});

const phase1a = (round: number): EnvelopeOf<'PHASE1A'> => ({
  v: 1,
  type: 'PHASE1A',
  txnId: 'x1',
  protocol: 'paxos-commit',
  from: 'c3',
  epoch: 0,
  sentAt: new Date().toISOString(),
  body: { membership, ballot: { round, replica: 'c3' }, instances: ['inventory', 'payments'] },
});

describe('acceptor driver', () => {
  it('writes the bundled ballot-0 votes once, then sends one phase 2b to the leader named by the participants', async () => {
    const { driver, events, sent } = setup();
    await driver.handle(vote('inventory', 'Prepared'));
    expect(events).toEqual([]);
    await driver.handle(vote('payments', 'Prepared'));
    expect(events).toEqual(['persist inventory,payments', 'send PHASE2B t.leader.c1']);
    expect(sent[0].envelope).toMatchObject({ from: 'c2', body: { ballot: BALLOT_ZERO, entries: [{ rm: 'inventory' }, { rm: 'payments' }] } });
  });

  it('tells the participants too in the faster variant, and passes a no vote’s reason on', async () => {
    const { driver, events, sent } = setup({ phase2bToRms: true });
    await driver.handle(vote('payments', 'Aborted', 'insufficient funds'));
    expect(events).toEqual(['persist payments', 'send PHASE2B t.leader.c1', 'send PHASE2B t.rm.inventory', 'send PHASE2B t.rm.payments']);
    expect(sent[0].envelope.body).toMatchObject({ entries: [{ rm: 'payments', value: 'Aborted', reason: 'insufficient funds' }] });
  });

  it('reveals nothing when its write fails', async () => {
    const { driver, sent } = setup({ failWrites: true });
    await driver.handle(phase1a(1));
    expect(sent).toEqual([]);
  });

  it('tries a failed write again and answers only once it is durable', async () => {
    const { driver, sent, durable, clock } = setup({ failFirstWrites: 1 });
    await driver.handle(phase1a(1));
    expect(sent).toEqual([]);
    expect(durable.get('x1')).toBeUndefined();
    const replied = new Promise<void>((resolve) => {
      const poll = (): void => (sent.length > 0 ? resolve() : void setTimeout(poll, 1));
      poll();
    });
    clock.advance(clock.nextAt() ?? 0);
    await replied;
    expect(durable.get('x1')).toHaveLength(1);
    expect(sent[0].envelope).toMatchObject({ type: 'PHASE1B', body: { promised: true } });
  });

  it('answers phase 1a from its durable state after a restart, and keeps its promise', async () => {
    const { driver, make, sent } = setup();
    await driver.handle(vote('inventory', 'Prepared'));
    await driver.handle(vote('payments', 'Prepared'));
    await driver.handle(phase1a(2));
    const restarted = make();
    await restarted.handle(phase1a(1));
    const replies = sent.filter((m) => m.envelope.type === 'PHASE1B').map((m) => m.envelope.body);
    expect(replies[0]).toMatchObject({ promised: true, reports: [{ rm: 'inventory', maxVBal: BALLOT_ZERO, maxVal: 'Prepared' }, { rm: 'payments', maxVal: 'Prepared' }] });
    expect(replies[1]).toMatchObject({ promised: false, maxBal: { round: 2, replica: 'c3' } });
  });
});
