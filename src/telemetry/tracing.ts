// OpenTelemetry traces: off unless the standard OTEL_* variables ask for them. On, spans go from
// the CLI's workflow start (client interceptor) through the workflow (workflow interceptors, whose
// spans leave the sandbox through a sink) and each activity to every SQL statement
// (@opentelemetry/instrumentation-pg), plus the token exchange (src/telemetry/spans.ts).
// OpenTelemetry JS v1, the line @temporalio/interceptors-opentelemetry 1.24 is built on.
import { Resource, detectResourcesSync, envDetectorSync } from '@opentelemetry/resources';
import type { SpanStatus } from '@opentelemetry/api';
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { sanitizeSql } from './sqlSanitizer';
import { activeTracing, setActiveTracing, tracingRequested } from './tracingSwitch';

export interface Tracing {
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * The pg instrumentation as the worker configures it: statement text without bound parameters
 * (they may be row values) and without the literals inlined into it (the sync's COPY and compare
 * statements carry cursor and key values as literals), no connection password.
 */
export function pgInstrumentation(): PgInstrumentation {
  return new PgInstrumentation({
    enhancedDatabaseReporting: false,
    // Runs after the instrumentation has set db.statement to the raw text: overwrite it.
    requestHook: (span, { query }) => {
      if (typeof query.text === 'string') span.setAttribute('db.statement', sanitizeSql(query.text));
    },
  });
}

/** A server error message with what it quotes taken out: `invalid input syntax for type integer: "?"`. */
export function scrubDbMessage(message: string): string {
  return sanitizeSql(message).replace(/"(?:[^"]|"")*"/g, '"?"');
}

/**
 * Hands spans on with the pg instrumentation's error status scrubbed: it records the server's
 * message, and some quote the value that failed (22P02 invalid input, 22001 too long for a type).
 */
export function scrubbingSpanProcessor(inner: SpanProcessor): SpanProcessor {
  return {
    onStart: (span, context) => inner.onStart(span, context),
    onEnd: (span) => {
      if (span.instrumentationLibrary.name === '@opentelemetry/instrumentation-pg' && span.status.message)
        (span as unknown as { status: SpanStatus }).status = { ...span.status, message: scrubDbMessage(span.status.message) };
      inner.onEnd(span);
    },
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  };
}

/**
 * Installs the global tracer provider and the pg instrumentation, once per process. Call it before
 * `pg` is loaded: the instrumentation patches the module as it is required.
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  const running = activeTracing();
  if (running || !tracingRequested(env)) return running;
  const version = (require('../../package.json') as { version: string }).version;
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) override our defaults.
  const resource = Resource.default()
    .merge(new Resource({ 'service.name': 'lakebase-worker', 'service.version': version }))
    .merge(detectResourcesSync({ detectors: [envDetectorSync] }));
  // The OTLP exporter reads its endpoint, headers and timeout from OTEL_EXPORTER_OTLP_* itself.
  const exporter: SpanExporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter();
  const spanProcessor = scrubbingSpanProcessor(new BatchSpanProcessor(exporter));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  registerInstrumentations({ tracerProvider: provider, instrumentations: [pgInstrumentation()] });
  const tracing: Tracing = { resource, spanProcessor, shutdown: () => provider.shutdown() };
  setActiveTracing(tracing);
  return tracing;
}
