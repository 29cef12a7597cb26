/**
 * One trace per transaction: the coordinator and the three service processes export their
 * spans to a local OTLP receiver, and the spans of one committed checkout must form a single
 * tree rooted at the API request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
 * The trace as an indented tree (span name and process), children in start order, for the
 * test's output. Database client spans are folded into a count on their parent to keep it short.
 */
function renderTree(root: ReceivedSpan, spans: readonly ReceivedSpan[], depth = 0): string[] {
  const children = spans.filter((s) => s.parentSpanId === root.spanId).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  const isDb = (s: ReceivedSpan) => s.name.startsWith('pg.') || s.name.startsWith('pg-pool.');
  const db = children.filter(isDb).length;
  const line = `${'  '.repeat(depth)}${root.name}  [${root.service}]${db ? `  (+${db} pg spans)` : ''}`;
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
