// Whether the OTEL_* environment asks for traces, and the process's tracing once started: free of
// the OpenTelemetry SDK, so the CLI and the client can ask on every call and the SDK loads only
// when tracing is on (src/telemetry/tracing.ts).
import type { Tracing } from './tracing';

/**
 * On when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER names otlp or console; off when
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === 'none') return false;
  if (exporter === 'otlp' || exporter === 'console') return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

let active: Tracing | undefined;

/** The process's tracing, once startTracing() ran (undefined while off). */
export function activeTracing(): Tracing | undefined {
  return active;
}

export function setActiveTracing(t: Tracing): void {
  active = t;
}
