// Our own spans (the token exchange): through the global OpenTelemetry API, so they cost nothing
// while tracing is off. Attributes name what happened, never a credential; a failure records its
// type only, because messages from token endpoints may quote what was sent.
import { SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';

export async function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return trace.getTracer('lakebase-worker').startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      const type = (err as { type?: unknown }).type;
      const failureType = typeof type === 'string' ? type : err instanceof Error ? err.name : 'unknown';
      span.setAttribute('lakebase.failure_type', failureType);
      span.setStatus({ code: SpanStatusCode.ERROR, message: failureType });
      throw err;
    } finally {
      span.end();
    }
  });
}
