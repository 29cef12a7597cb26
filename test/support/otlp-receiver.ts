/**
 * A local OTLP/HTTP receiver for tests: processes export their spans to it as JSON
 * (OTEL_EXPORTER_OTLP_PROTOCOL=http/json), and the test reads them back as flat records.
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  readonly service: string;
  /** The resource's `service.instance.id` (a coordinator replica's id, when its environment sets one). */
  readonly instance: string | undefined;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  /** Start time in nanoseconds since the epoch (OTLP sends it as a decimal string). */
  readonly startNs: bigint;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** Spans this one links to (a bundled message's other causes, say), by id. */
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
}

type Scalar = string | number | boolean;
export type AttributeValue = Scalar | readonly Scalar[];

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}

const scalarOf = (v: OtlpValue): Scalar => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue ?? ''));
const valueOf = (v: OtlpValue): AttributeValue => (v.arrayValue ? (v.arrayValue.values ?? []).map(scalarOf) : scalarOf(v));
const attributesOf = (list: OtlpKeyValue[] = []): Record<string, AttributeValue> => Object.fromEntries(list.map((kv) => [kv.key, valueOf(kv.value)]));

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  private server: Server | undefined;
  private listeners: (() => void)[] = [];

  async start(): Promise<string> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.url === '/v1/traces') this.ingest(Buffer.concat(chunks).toString('utf8'));
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  /** Resolves once `condition` holds over the spans received so far. */
  async waitFor(what: string, condition: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs = 30_000): Promise<void> {
    if (condition(this.spans)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; have ${this.spans.length} spans`)), timeoutMs);
      const check = (): void => {
        if (!condition(this.spans)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private ingest(body: string): void {
    const payload = JSON.parse(body) as {
      resourceSpans?: { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
    };
    for (const resourceSpans of payload.resourceSpans ?? []) {
      const resource = attributesOf(resourceSpans.resource?.attributes);
      const service = String(resource['service.name'] ?? 'unknown');
      const instance = resource['service.instance.id'] === undefined ? undefined : String(resource['service.instance.id']);
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service,
            instance,
            traceId: String(span.traceId),
            spanId: String(span.spanId),
            parentSpanId: span.parentSpanId ? String(span.parentSpanId) : undefined,
            name: String(span.name),
            kind: Number(span.kind),
            startNs: BigInt(String(span.startTimeUnixNano ?? 0)),
            attributes: attributesOf(span.attributes as OtlpKeyValue[]),
            links: ((span.links as { traceId: string; spanId: string }[] | undefined) ?? []).map((l) => ({ traceId: String(l.traceId), spanId: String(l.spanId) })),
          });
        }
      }
    }
    for (const listener of [...this.listeners]) listener();
  }
}
