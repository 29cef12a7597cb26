/**
 * Metrics and operations through a real coordinator process: the Prometheus exposition
 * after a commit and an abort, a transaction's timeline, and the operator actions with
 * their audit trail. Participants are played by the test over the real Kafka broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../support/cluster';
import { FakeParticipant } from '../support/fake-participant';
import { waitUntil } from '../support/processes';
import { Sample, parseExposition, sampleValue } from '../support/prometheus-text';

// The periodic resend is pushed far out, so that a decision arriving twice can only be the redrive.
const cluster = new Cluster({ services: [], coordinatorEnv: { RESEND_INTERVAL_MS: '600000' } });
let alpha: FakeParticipant;
let beta: FakeParticipant;
/** Never votes; acknowledges decisions. */
let sloth: FakeParticipant;
/** Votes when told; never acknowledges on its own. */
let lazy: FakeParticipant;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const operator = { by: 'alice', reason: 'stuck in the e2e test' };

beforeAll(async () => {
  await cluster.start();
  alpha = new FakeParticipant('alpha', cluster.prefix, { autoAck: true });
  beta = new FakeParticipant('beta', cluster.prefix, { autoAck: true });
  sloth = new FakeParticipant('sloth', cluster.prefix, { autoAck: true });
  lazy = new FakeParticipant('lazy', cluster.prefix);
  await Promise.all([alpha.start(), beta.start(), sloth.start(), lazy.start()]);
  for (const name of ['alpha', 'beta', 'sloth', 'lazy']) await cluster.waitForLive(name);
});

afterAll(async () => {
  await Promise.all([alpha?.stop(), beta?.stop(), sloth?.stop(), lazy?.stop()]);
  await cluster.stop();
});

async function scrape(): Promise<{ contentType: string | null; samples: Sample[] }> {
  const response = await fetch(`${cluster.baseUrl}/metrics`);
  expect(response.status).toBe(200);
  return { contentType: response.headers.get('content-type'), samples: parseExposition(await response.text()) };
}

async function create(participants: string[], headers: Record<string, string> = {}, timeoutMs?: number): Promise<string> {
  const { status, body } = await cluster.api('POST', '/v1/transactions', { protocol: '2pc', participants: participants.map((name) => ({ name })), timeoutMs }, headers);
  expect(status).toBe(201);
  return body.id;
}

const completed = (id: string) => waitUntil(`${id} to complete`, async () => (await cluster.api('GET', `/v1/transactions/${id}`)).body.completed);

describe('metrics', () => {
  it('count a commit and an abort, their latencies and the votes, on /metrics', async () => {
    const before = await scrape();
    const committed = await create(['alpha', 'beta']);
    await alpha.vote(committed, 'YES');
    await beta.vote(committed, 'YES');
    await completed(committed);
    const aborted = await create(['alpha', 'beta']);
    await alpha.vote(aborted, 'NO', 'out of stock');
    await completed(aborted);
    const after = await scrape();

    expect(after.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const delta = (name: string, labels: Record<string, string>) => sampleValue(after.samples, name, labels) - sampleValue(before.samples, name, labels);
    const twoPc = { protocol: '2pc' };
    expect(delta('txn_started_total', twoPc)).toBe(2);
    expect(delta('txn_decided_total', { ...twoPc, decision: 'COMMIT' })).toBe(1);
    expect(delta('txn_decided_total', { ...twoPc, decision: 'ABORT' })).toBe(1);
    expect(delta('txn_decision_latency_seconds_count', { ...twoPc, decision: 'COMMIT' })).toBe(1);
    expect(delta('txn_decision_latency_seconds_count', { ...twoPc, decision: 'ABORT' })).toBe(1);
    expect(delta('txn_decision_latency_seconds_bucket', { ...twoPc, decision: 'COMMIT', le: '+Inf' })).toBe(1);
    expect(delta('txn_phase_latency_seconds_count', { ...twoPc, phase: 'prepare' })).toBe(2);
    expect(delta('txn_phase_latency_seconds_count', { ...twoPc, phase: 'commit' })).toBe(2);
    expect(delta('txn_votes_total', { participant: 'alpha', vote: 'YES' })).toBe(1);
    expect(delta('txn_votes_total', { participant: 'alpha', vote: 'NO' })).toBe(1);
    expect(delta('txn_votes_total', { participant: 'beta', vote: 'YES' })).toBe(1);
    expect(delta('txn_recoveries_total', twoPc)).toBe(0);

    // Nothing is in doubt once both completed; the registered-but-idle series are there at 0.
    expect(sampleValue(after.samples, 'txn_unfinished', twoPc)).toBe(0);
    expect(sampleValue(after.samples, 'txn_oldest_unfinished_age_seconds')).toBe(0);
    expect(after.samples.some((s) => s.name === 'txn_takeovers_total' && s.labels.protocol === '2pc' && s.value === 0)).toBe(true);
    expect(after.samples.some((s) => s.name.startsWith('txn_coordinator_process_'))).toBe(true);
    expect(after.samples.every((s) => s.labels.coordinator === 'coordinator-1')).toBe(true);
  });
});

describe('timeline', () => {
  it('tells a transaction in order, with the trace id of the traceparent it was created under', async () => {
    const id = await create(['alpha', 'beta'], { traceparent: TRACEPARENT });
    await alpha.vote(id, 'YES');
    await beta.vote(id, 'NO', 'card declined');
    await completed(id);
    const { status, body } = await cluster.api('GET', `/v1/transactions/${id}/timeline`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id, protocol: '2pc', state: 'ABORTED', completed: true, traceId: TRACE_ID });
    expect(body.events.map((e: { type: string; participant?: string }) => e.type + (e.participant ? `:${e.participant}` : ''))).toEqual([
      'created',
      'voted:alpha',
      'voted:beta',
      'decided',
      ...[...body.events.filter((e: { type: string }) => e.type === 'acked').map((e: { participant: string }) => `acked:${e.participant}`)],
      'completed',
    ]);
    expect(body.events.filter((e: { type: string }) => e.type === 'acked')).toHaveLength(2);
    expect(body.events[2]).toMatchObject({ vote: 'NO', reason: 'card declined' });
    expect(body.events[3]).toMatchObject({ decision: 'ABORT', reason: 'beta voted no: card declined' });
    const times = body.events.map((e: { at: string }) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect((await cluster.api('GET', '/v1/transactions/00000000-0000-4000-8000-000000000000/timeline')).status).toBe(404);
  });
});

describe('operator actions', () => {
  it('abort an undecided transaction, listed as unfinished first, and refuse a second abort', async () => {
    const id = await create(['alpha', 'sloth'], {}, 120_000);
    await sloth.next('PREPARE', id);
    await alpha.vote(id, 'YES');
    await waitUntil('the vote to be logged', async () => (await cluster.api('GET', `/v1/transactions/${id}`)).body.participants[0].vote === 'YES');

    const unfinished = await cluster.api('GET', '/v1/ops/unfinished?limit=50');
    const listed = unfinished.body.find((t: { id: string }) => t.id === id);
    expect(listed).toMatchObject({ state: 'PREPARING', decision: null, participants: 2, votes: 1, acks: 0, waitingOn: ['sloth'] });
    expect(listed.ageMs).toBeGreaterThan(0);
    const gauges = (await scrape()).samples;
    expect(sampleValue(gauges, 'txn_unfinished', { protocol: '2pc' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(gauges, 'txn_oldest_unfinished_age_seconds')).toBeGreaterThan(0);

    expect((await cluster.api('POST', `/v1/transactions/${id}/abort`, { by: 'alice' })).status).toBe(400);
    expect((await cluster.api('POST', `/v1/transactions/${id}/abort`, { by: ' ', reason: 'x' })).status).toBe(400);
    expect((await cluster.api('POST', '/v1/transactions/00000000-0000-4000-8000-000000000000/abort', operator)).status).toBe(404);
    const early = await cluster.api('POST', `/v1/transactions/${id}/redrive`, operator);
    expect(early.status).toBe(409);
    expect(early.body.message).toMatch(/abort it instead, or wait/);

    const aborted = await cluster.api('POST', `/v1/transactions/${id}/abort`, operator);
    expect(aborted.status).toBe(200);
    expect(aborted.body).toMatchObject({ action: 'abort', outcome: 'aborted', transaction: { state: 'ABORTED', decision: 'ABORT' } });
    expect(aborted.body.transaction.decisionReason).toBe('aborted by operator alice: stuck in the e2e test');
    await sloth.next('ABORT', id);
    await alpha.next('ABORT', id);
    await completed(id);

    const again = await cluster.api('POST', `/v1/transactions/${id}/abort`, { by: 'bob', reason: 'double check' });
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/decision ABORT is already logged; changing it would break atomicity/);

    const audit = await cluster.query('coordinator', 'SELECT action, actor, reason, outcome FROM operator_actions WHERE txn_id = $1 ORDER BY id', [id]);
    expect(audit).toEqual([
      { action: 'redrive', actor: 'alice', reason: operator.reason, outcome: 'refused' },
      { action: 'abort', actor: 'alice', reason: operator.reason, outcome: 'aborted' },
      { action: 'abort', actor: 'bob', reason: 'double check', outcome: 'refused' },
    ]);
    const timeline = (await cluster.api('GET', `/v1/transactions/${id}/timeline`)).body;
    const actions = timeline.events.filter((e: { type: string }) => e.type === 'operatorAction');
    expect(actions.map((e: { action: string; by: string; outcome: string }) => [e.action, e.by, e.outcome])).toEqual([
      ['redrive', 'alice', 'refused'],
      ['abort', 'alice', 'aborted'],
      ['abort', 'bob', 'refused'],
    ]);
    expect(actions[2].detail).toMatch(/already logged/);
  });

  it('refuse to abort a committed transaction, and record the refusal', async () => {
    const id = await create(['alpha', 'beta']);
    await alpha.vote(id, 'YES');
    await beta.vote(id, 'YES');
    await completed(id);
    const refused = await cluster.api('POST', `/v1/transactions/${id}/abort`, operator);
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/decision COMMIT is already logged/);
    expect((await cluster.api('GET', `/v1/transactions/${id}`)).body).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT' });
    const audit = await cluster.query('coordinator', 'SELECT action, outcome, detail FROM operator_actions WHERE txn_id = $1', [id]);
    expect(audit).toEqual([{ action: 'abort', outcome: 'refused', detail: expect.stringMatching(/break atomicity/) }]);
    const redrive = await cluster.api('POST', `/v1/transactions/${id}/redrive`, operator);
    expect(redrive.status).toBe(409);
    expect(redrive.body.message).toMatch(/already complete/);
  });

  it('redrive a decided but unacknowledged transaction: the participant hears the decision again', async () => {
    const id = await create(['alpha', 'lazy']);
    await alpha.vote(id, 'YES');
    await lazy.vote(id, 'YES');
    await lazy.next('COMMIT', id);
    const commits = () => lazy.received.filter((e) => e.type === 'COMMIT' && e.txnId === id).length;
    await waitUntil('alpha to acknowledge', async () => (await cluster.api('GET', `/v1/transactions/${id}`)).body.participants[0].acked);

    const listed = (await cluster.api('GET', '/v1/ops/unfinished')).body.find((t: { id: string }) => t.id === id);
    expect(listed).toMatchObject({ state: 'COMMITTED', decision: 'COMMIT', acks: 1, waitingOn: ['lazy'] });
    expect(listed.ageMs).toBeGreaterThan(0);
    expect(commits()).toBe(1);

    const redriven = await cluster.api('POST', `/v1/transactions/${id}/redrive`, { by: 'carol', reason: 'lazy restarted' });
    expect(redriven.status).toBe(200);
    expect(redriven.body).toMatchObject({ action: 'redrive', outcome: 'redriven', detail: 're-sent COMMIT to lazy' });
    await waitUntil('lazy to receive COMMIT again', async () => commits() === 2, 20_000);
    expect(alpha.received.filter((e) => e.type === 'COMMIT' && e.txnId === id)).toHaveLength(1);

    await lazy.reply(id, 'ACK', { outcome: 'COMMIT' });
    await completed(id);
    expect((await cluster.api('GET', '/v1/ops/unfinished')).body.some((t: { id: string }) => t.id === id)).toBe(false);
    const audit = await cluster.query('coordinator', 'SELECT action, actor, outcome FROM operator_actions WHERE txn_id = $1', [id]);
    expect(audit).toEqual([{ action: 'redrive', actor: 'carol', outcome: 'redriven' }]);
  });

  it('summarises outcomes per protocol and state', async () => {
    const { body } = await cluster.api('GET', '/v1/ops/summary');
    const count = (state: string) => body.outcomes.find((o: { protocol: string; state: string }) => o.protocol === '2pc' && o.state === state)?.count ?? 0;
    const listed = (await cluster.api('GET', '/v1/transactions?limit=500')).body;
    for (const state of ['COMMITTED', 'ABORTED']) expect(count(state)).toBe(listed.filter((t: { state: string }) => t.state === state).length);
    expect(body.unfinished.reduce((n: number, u: { count: number }) => n + u.count, 0)).toBe(listed.filter((t: { completed: boolean }) => !t.completed).length);
  });
});
