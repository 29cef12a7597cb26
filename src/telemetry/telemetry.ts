/**
 * OpenTelemetry starts before Nest so that its instrumentations patch http, pg and kafkajs
 * before those modules are first required. Exporters follow the standard OTEL_* variables;
 * with none set, the SDK runs without exporting (OTEL_SDK_DISABLED=true turns it off).
 */
import { NodeSDK } from '@opentelemetry/sdk-node';

let sdk: NodeSDK | undefined;

export function startTelemetry(serviceName: string): void {
  if (sdk || process.env.OTEL_SDK_DISABLED === 'true') return;
  process.env.OTEL_SERVICE_NAME ??= serviceName;
  // Without an endpoint there is nothing to export to; avoid the SDK's default OTLP retries.
  if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT && !process.env.OTEL_TRACES_EXPORTER) process.env.OTEL_TRACES_EXPORTER = 'none';
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  sdk = new NodeSDK();
  sdk.start();
}

export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}
