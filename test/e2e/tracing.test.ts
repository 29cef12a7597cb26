/**
 * One trace per transaction: the coordinator and the three service processes export their
 * spans to a local OTLP receiver, and the spans of one committed checkout must form a single
 * tree rooted at the API request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkoutBody } from '../support/checkout';
import { Cluster } from '../support/cluster';
import { OtlpReceiver, ReceivedSpan } from '../support/otlp-receiver';
import { waitUntil } from '../support/processes';

const receiver = new OtlpReceiver();
let cluster: Cluster;

beforeAll(async () => {
  const endpoint = await receiver.start();
  cluster = new Cluster({
    processEnv: {
      OTEL_SDK_DISABLED: 'false',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  });
  await cluster.start();
});

afterAll(async () => {
  await cluster?.stop();
  await receiver.stop();
});

function ancestors(span: ReceivedSpan, byId: Map<string, ReceivedSpan>): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let parent = span.parentSpanId && byId.get(span.parentSpanId); parent; parent = parent.parentSpanId && byId.get(parent.parentSpanId)) chain.push(parent);
  return chain;
}

/**
 * The trace as an indented tree (span name and process, and the replica where a span names
 * one), children in start order, for the test's output. Database client spans are folded into
 * a count on their parent to keep it short.
 */
function renderTree(root: ReceivedSpan, spans: readonly ReceivedSpan[], depth = 0): string[] {
  const children = spans.filter((s) => s.parentSpanId === root.spanId).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  const isDb = (s: ReceivedSpan) => s.name.startsWith('pg.') || s.name.startsWith('pg-pool.');
  const db = children.filter(isDb).length;
  const where = root.instance ? `${root.service} ${root.instance}` : root.service;
  const line = `${'  '.repeat(depth)}${root.name}  [${where}]${db ? `  (+${db} pg spans)` : ''}`;
  return [line, ...children.filter((c) => !isDb(c)).flatMap((c) => renderTree(c, spans, depth + 1))];
}

describe('tracing', () => {
  it('puts a committed checkout into one trace across the coordinator and all three services', async () => {
    const { body } = await cluster.api('POST', '/v1/transactions?waitMs=30000', {
      protocol: '2pc',
      participants: [
        { name: 'inventory', payload: { sku: 'sku-1', qty: 1 } },
        { name: 'payments', payload: { account: 'acct-1', amount: 120 } },
        { name: 'orders', payload: { orderId: 'traced-1', sku: 'sku-1', qty: 1, account: 'acct-1', amount: 120 } },
      ],
    });
    expect(body.state).toBe('COMMITTED');
    await waitUntil('completion', async () => (await cluster.api('GET', `/v1/transactions/${body.id}`)).body.completed);
    const [{ trace_context: traceparent }] = await cluster.query('coordinator', 'SELECT trace_context FROM transactions WHERE id = $1', [body.id]);
    const traceId = String(traceparent).split('-')[1];
    const inTrace = (spans: readonly ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
    const has = (spans: readonly ReceivedSpan[], service: string, name: string) => inTrace(spans).some((s) => s.service === service && s.name === name);
    const rootsOf = (spans: readonly ReceivedSpan[]) => {
      const ids = new Set(spans.map((s) => s.spanId));
      return spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
    };
    // Spans arrive in batches as they end; wait until the tree is whole, not just until its leaves are in.
    await receiver.waitFor('the whole tree: every participant commit, the commit phase and a single root', (spans) =>
      ['inventory', 'payments', 'orders'].every((service) => has(spans, service, 'participant prepare') && has(spans, service, 'participant commit')) &&
      has(spans, 'txn-coordinator', '2pc commit phase') &&
      rootsOf(inTrace(spans)).length === 1,
    );

    const spans = inTrace(receiver.spans);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const [root] = rootsOf(spans);
    expect(root).toMatchObject({ service: 'txn-coordinator', kind: 2 });
    console.log(`TRACE ${traceId} (${spans.length} spans)\n${renderTree(root, spans).join('\n')}`);
    expect(String(root.attributes['http.method'] ?? root.attributes['http.request.method'])).toBe('POST');

    const phases = spans.filter((s) => s.name.startsWith('2pc ') && s.name.endsWith(' phase'));
    expect(phases.map((s) => s.name).sort()).toEqual(['2pc commit phase', '2pc prepare phase']);
    for (const phase of phases) expect(phase.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': '2pc', 'txn.decision': 'COMMIT' });
    const decisionWrite = spans.find((s) => s.name === 'decision-log append decision');
    expect(decisionWrite?.attributes['txn.decision']).toBe('COMMIT');
    expect(spans.some((s) => s.service === 'txn-coordinator' && (s.attributes['db.system.name'] ?? s.attributes['db.system']) === 'postgresql')).toBe(true);

    for (const service of ['inventory', 'payments', 'orders']) {
      const prepare = spans.find((s) => s.service === service && s.name === 'participant prepare')!;
      const chain = ancestors(prepare, byId);
      expect(chain.at(-1)?.spanId).toBe(root.spanId);
      // The handler runs under the Kafka receive, which runs under the coordinator's send in the prepare phase.
      expect(chain.some((s) => s.service === service && s.kind === 5 && s.attributes['messaging.system'] === 'kafka')).toBe(true);
      expect(chain.some((s) => s.service === 'txn-coordinator' && s.kind === 4)).toBe(true);
      expect(chain.some((s) => s.name === '2pc prepare phase')).toBe(true);
      const commit = spans.find((s) => s.service === service && s.name === 'participant commit')!;
      expect(ancestors(commit, byId).some((s) => s.name === '2pc commit phase')).toBe(true);
    }
  });
});

describe('tracing across a crash', () => {
  it('joins the work of a recovery after SIGKILL to the transaction\'s original trace', async () => {
    const crashReceiver = new OtlpReceiver();
    const endpoint = await crashReceiver.start();
    const crashed = new Cluster({
      coordinatorEnv: { FAILPOINTS: 'after-decision-logged' },
      processEnv: { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    try {
      await crashed.start();
      const { body } = await crashed.api('POST', '/v1/transactions', {
        protocol: '2pc',
        participants: [
          { name: 'inventory', payload: { sku: 'sku-1', qty: 1 } },
          { name: 'payments', payload: { account: 'acct-1', amount: 120 } },
        ],
      });
      await crashed.coordinator!.waitForOutput(new RegExp(`FAILPOINT after-decision-logged ${body.id}`));
      await crashed.coordinator!.kill('SIGKILL');
      await crashed.startCoordinator();
      await waitUntil('completion after recovery', async () => (await crashed.api('GET', `/v1/transactions/${body.id}`)).body.completed, 60_000);
      const [{ trace_context: traceparent }] = await crashed.query('coordinator', 'SELECT trace_context FROM transactions WHERE id = $1', [body.id]);
      const traceId = String(traceparent).split('-')[1];
      await crashReceiver.waitFor('the recovered commit phase and both participants committing in the original trace', (spans) => {
        const inTrace = spans.filter((s) => s.traceId === traceId);
        return (
          inTrace.some((s) => s.name === '2pc commit phase' && s.attributes['txn.recovered'] === true) &&
          ['inventory', 'payments'].every((service) => inTrace.some((s) => s.service === service && s.name === 'participant commit'))
        );
      });
      const recovered = crashReceiver.spans.find((s) => s.traceId === traceId && s.attributes['txn.recovered'] === true)!;
      expect(recovered.attributes).toMatchObject({ 'txn.id': body.id, 'txn.decision': 'COMMIT' });
    } finally {
      await crashed.stop();
      await crashReceiver.stop();
    }
  });
});

const SERVICE_NAMES = ['inventory', 'payments', 'orders'] as const;
/** Span kinds as OTLP numbers them. */
const KIND = { server: 2, producer: 4, consumer: 5 } as const;

function otelEnv(endpoint: string): Record<string, string> {
  return { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' };
}

/** The id of the trace stored with the transaction, which its root span started. */
async function storedTraceId(on: Cluster, txnId: string): Promise<string> {
  const [{ trace_context: traceparent }] = await on.query('coordinator', 'SELECT trace_context FROM transactions WHERE id = $1', [txnId]);
  return String(traceparent).split('-')[1];
}

/** Spans of `spans` whose parent is not among them: just the root once a trace is whole. */
function topmost(spans: readonly ReceivedSpan[]): ReceivedSpan[] {
  const ids = new Set(spans.map((s) => s.spanId));
  return spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
}

const byStart = (a: ReceivedSpan, b: ReceivedSpan): number => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0);

interface WholeTrace {
  readonly spans: readonly ReceivedSpan[];
  readonly byId: Map<string, ReceivedSpan>;
  readonly root: ReceivedSpan;
  /** Whether `ancestor` is above `span` in the tree. */
  under(span: ReceivedSpan, ancestor: ReceivedSpan): boolean;
}

/**
 * Waits until trace `traceId` satisfies `complete` and has a single root, then returns it.
 * Spans arrive in batches as they end, so the condition names the last spans to end. Should
 * it never happen, the fragments received so far are printed before the test fails.
 */
async function wholeTrace(from: OtlpReceiver, traceId: string, what: string, complete: (trace: readonly ReceivedSpan[]) => boolean): Promise<WholeTrace> {
  const of = (spans: readonly ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
  try {
    await from.waitFor(what, (spans) => complete(of(spans)) && topmost(of(spans)).length === 1);
  } catch (error) {
    const fragments = topmost(of(from.spans)).map((top) => renderTree(top, of(from.spans)).join('\n'));
    console.log(`TRACE ${traceId} incomplete, ${fragments.length} fragment(s):\n${fragments.join('\n--\n')}`);
    throw error;
  }
  const spans = of(from.spans);
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const [root] = topmost(spans);
  return { spans, byId, root, under: (span, ancestor) => ancestors(span, byId).some((a) => a.spanId === ancestor.spanId) };
}

const has = (spans: readonly ReceivedSpan[], service: string, name: string): boolean => spans.some((s) => s.service === service && s.name === name);
const only = (spans: readonly ReceivedSpan[], service: string, name: string): ReceivedSpan => {
  const found = spans.filter((s) => s.service === service && s.name === name);
  expect(found, `${service}: ${name}`).toHaveLength(1);
  return found[0];
};

describe('tracing three-phase commit', () => {
  it('puts a committed 3pc checkout into one trace, PreCommit a phase of its own between prepare and commit', async () => {
    const { body } = await cluster.api('POST', '/v1/transactions?waitMs=30000', checkoutBody('3pc', 'traced-3pc-1'));
    expect(body).toMatchObject({ protocol: '3pc', state: 'COMMITTED' });
    await waitUntil('completion', async () => (await cluster.api('GET', `/v1/transactions/${body.id}`)).body.completed);
    const traceId = await storedTraceId(cluster, body.id);
    const { spans, root, under } = await wholeTrace(receiver, traceId, 'every 3pc participant commit and the commit phase under a single root', (trace) =>
      SERVICE_NAMES.every((service) => has(trace, service, 'participant prepare') && has(trace, service, 'participant commit')) && has(trace, 'txn-coordinator', '3pc commit phase'),
    );
    console.log(`TRACE 3pc ${traceId} (${spans.length} spans)\n${renderTree(root, spans).join('\n')}`);
    expect(root).toMatchObject({ service: 'txn-coordinator', kind: KIND.server });
    expect(String(root.attributes['http.method'] ?? root.attributes['http.request.method'])).toBe('POST');

    // Three phases in protocol order, each a child of the root, each knowing the outcome.
    const phases = spans.filter((s) => s.name.startsWith('3pc ') && s.name.endsWith(' phase')).sort(byStart);
    expect(phases.map((s) => s.name)).toEqual(['3pc prepare phase', '3pc precommit phase', '3pc commit phase']);
    for (const phase of phases) {
      expect(phase.parentSpanId).toBe(root.spanId);
      expect(phase.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': '3pc', 'txn.decision': 'COMMIT' });
    }
    const [prepare, preCommit, commit] = phases;
    // The decision is taken once every PreCommit is acknowledged: its write belongs to the PreCommit phase.
    const decisionWrite = only(spans, 'txn-coordinator', 'decision-log append decision');
    expect(decisionWrite.attributes['txn.decision']).toBe('COMMIT');
    expect(under(decisionWrite, preCommit)).toBe(true);

    for (const service of SERVICE_NAMES) {
      const prepared = only(spans, service, 'participant prepare');
      const chain = ancestors(prepared, new Map(spans.map((s) => [s.spanId, s])));
      expect(chain.at(-1)?.spanId).toBe(root.spanId);
      expect(chain.some((s) => s.service === service && s.kind === KIND.consumer && s.attributes['messaging.system'] === 'kafka')).toBe(true);
      expect(chain.some((s) => s.service === 'txn-coordinator' && s.kind === KIND.producer)).toBe(true);
      expect(under(prepared, prepare)).toBe(true);
      expect(prepared.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': '3pc' });
      // The PRECOMMIT reaches the service in the PreCommit phase, and its acknowledgement gets back to the coordinator.
      const preCommitted = spans.filter((s) => s.service === service && s.kind === KIND.consumer && under(s, preCommit));
      expect(preCommitted.length, `${service} receives the PRECOMMIT`).toBeGreaterThan(0);
      expect(spans.some((s) => s.service === 'txn-coordinator' && s.kind === KIND.consumer && preCommitted.some((p) => under(s, p)))).toBe(true);
      const committed = only(spans, service, 'participant commit');
      expect(under(committed, commit)).toBe(true);
      expect(committed.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': '3pc', 'txn.decision': 'COMMIT' });
    }
  });
});

describe('tracing Paxos Commit across three replicas', () => {
  const paxosReceiver = new OtlpReceiver();
  let paxos: Cluster;

  beforeAll(async () => {
    const endpoint = await paxosReceiver.start();
    // Each replica names itself in its spans, so the test can tell the one that took the request from the leader.
    const replicaEnv = Object.fromEntries([0, 1, 2].map((i) => [i, { OTEL_RESOURCE_ATTRIBUTES: `service.instance.id=coordinator-${i + 1}` }]));
    paxos = new Cluster({ replicas: 3, paxosCommit: true, processEnv: otelEnv(endpoint), replicaEnv });
    await paxos.start();
  });

  afterAll(async () => {
    await paxos?.stop();
    await paxosReceiver.stop();
  });

  it('puts a checkout handed over to the leader into one trace: leader phases, participants, acceptors', async () => {
    // Replica 2 is not the leader (coordinator-1 is): it logs the transaction and hands it over.
    const { body } = await paxos.apiOn(1, 'POST', '/v1/transactions?waitMs=30000', checkoutBody('paxos-commit', 'traced-paxos-1'));
    expect(body).toMatchObject({ protocol: 'paxos-commit', state: 'COMMITTED' });
    await waitUntil('completion', async () => (await paxos.apiOn(2, 'GET', `/v1/transactions/${body.id}`)).body.completed);
    const leader = (await paxos.apiOn(2, 'GET', `/v1/transactions/${body.id}`)).body.evidence.decidedBy;
    expect(leader).toBe('coordinator-1');
    const traceId = await storedTraceId(paxos, body.id);
    /**
     * The acceptors that accepted `service`'s ballot-0 vote (an `acceptor phase 2a` below the
     * service's send) and whose phase 2b reporting it reached the leader: sent from that step,
     * or from a later one of the same acceptor that bundles it and links back to it.
     */
    const reportedToLeader = (trace: readonly ReceivedSpan[], service: string): Set<string | undefined> => {
      const ids = new Map(trace.map((s) => [s.spanId, s]));
      const steps = trace.filter((s) => s.name === 'acceptor phase 2a');
      const atLeader = (step: ReceivedSpan) => trace.some((s) => s.instance === leader && s.kind === KIND.consumer && ancestors(s, ids).includes(step));
      const reports = (step: ReceivedSpan, accepted: ReceivedSpan) =>
        step.instance === accepted.instance && (step === accepted || step.links.some((l) => l.spanId === accepted.spanId)) && ([step.attributes['paxos.reported']].flat() as unknown[]).includes(service);
      const accepted = steps.filter((s) => ancestors(s, ids).some((a) => a.service === service));
      return new Set(accepted.filter((a) => steps.some((step) => reports(step, a) && atLeader(step))).map((a) => a.instance));
    };
    const { spans, byId, root, under } = await wholeTrace(paxosReceiver, traceId, 'every participant commit, each vote reported to the leader by a majority and the commit phase under a single root', (trace) =>
      SERVICE_NAMES.every((service) => has(trace, service, 'participant prepare') && has(trace, service, 'participant commit') && reportedToLeader(trace, service).size >= 2) &&
      has(trace, 'txn-coordinator', 'paxos-commit commit phase'),
    );
    console.log(`TRACE paxos-commit ${traceId} (${spans.length} spans)\n${renderTree(root, spans).join('\n')}`);
    expect(root).toMatchObject({ service: 'txn-coordinator', instance: 'coordinator-2', kind: KIND.server });
    expect(String(root.attributes['http.method'] ?? root.attributes['http.request.method'])).toBe('POST');

    // The leader's phases hang off the root of a request another replica took.
    const phases = spans.filter((s) => s.name.startsWith('paxos-commit ') && s.name.endsWith(' phase')).sort(byStart);
    expect(phases.map((s) => s.name)).toEqual(['paxos-commit prepare phase', 'paxos-commit commit phase']);
    const [prepare, commit] = phases;
    for (const phase of phases) {
      expect(phase).toMatchObject({ instance: leader, parentSpanId: root.spanId });
      expect(phase.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': 'paxos-commit', 'txn.decision': 'COMMIT' });
    }
    const decisionWrite = only(spans, 'txn-coordinator', 'decision-log append decision');
    expect(decisionWrite).toMatchObject({ instance: leader, attributes: expect.objectContaining({ 'txn.decision': 'COMMIT' }) });
    expect(under(decisionWrite, prepare)).toBe(true);

    for (const service of SERVICE_NAMES) {
      const prepared = only(spans, service, 'participant prepare');
      const chain = ancestors(prepared, byId);
      expect(chain.at(-1)?.spanId).toBe(root.spanId);
      const received = chain.find((s) => s.service === service && s.kind === KIND.consumer && s.attributes['messaging.system'] === 'kafka');
      expect(received, `${service} receives the PREPARE`).toBeDefined();
      expect(chain.some((s) => s.instance === leader && s.kind === KIND.producer)).toBe(true);
      expect(under(prepared, prepare)).toBe(true);
      expect(prepared.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': 'paxos-commit' });

      // The vote leaves for every acceptor as phase 2a of the service's ballot 0: each acceptor's step runs below it.
      const accepted = spans.filter((s) => s.name === 'acceptor phase 2a' && under(s, received!));
      expect(new Set(accepted.map((s) => s.instance)).size).toBeGreaterThanOrEqual(2);
      for (const step of accepted) {
        expect(step).toMatchObject({ service: 'txn-coordinator', attributes: expect.objectContaining({ 'txn.id': body.id, 'txn.protocol': 'paxos-commit', 'paxos.proposer': service, 'paxos.ballot.round': 0 }) });
      }
      expect(reportedToLeader(spans, service).size).toBeGreaterThanOrEqual(2);

      // The outcome comes from the leader's COMMIT or, in the faster variant, from the acceptors' phase 2b.
      const committed = only(spans, service, 'participant commit');
      expect(ancestors(committed, byId).at(-1)?.spanId).toBe(root.spanId);
      expect(under(committed, commit) || ancestors(committed, byId).some((s) => s.name === 'acceptor phase 2a')).toBe(true);
      expect(committed.attributes).toMatchObject({ 'txn.id': body.id, 'txn.protocol': 'paxos-commit', 'txn.decision': 'COMMIT' });
    }
  });
});
