/**
 * A local OTLP/HTTP receiver for tests: processes export their spans to it as JSON
 * (OTEL_EXPORTER_OTLP_PROTOCOL=http/json), and the test reads them back as flat records.
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  /** Start time in nanoseconds since the epoch (OTLP sends it as a decimal string). */
  readonly startNs: bigint;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}

const valueOf = (v: OtlpValue): string | number | boolean => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue ?? ''));
const attributesOf = (list: OtlpKeyValue[] = []): Record<string, string | number | boolean> => Object.fromEntries(list.map((kv) => [kv.key, valueOf(kv.value)]));

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
      const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name'] ?? 'unknown');
      for (const scope of resourceSpans.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service,
            traceId: String(span.traceId),
            spanId: String(span.spanId),
            parentSpanId: span.parentSpanId ? String(span.parentSpanId) : undefined,
            name: String(span.name),
            kind: Number(span.kind),
            startNs: BigInt(String(span.startTimeUnixNano ?? 0)),
            attributes: attributesOf(span.attributes as OtlpKeyValue[]),
          });
        }
      }
    }
    for (const listener of [...this.listeners]) listener();
  }
}
