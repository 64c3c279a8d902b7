// What the worker installs for outcomes and traces besides the bundled workflow interceptors
// (src/telemetry/interceptorModules.ts): the activity interceptors and the sinks the workflow side
// reports through.
import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor, makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { Metrics } from '../metrics';
import { outcomeSinks } from './outcomeMetrics';
import type { Tracing } from './tracing';
import type { OutcomeSinks } from './workflowOutcomes';

export function activityInterceptors(): NonNullable<WorkerInterceptors['activity']> {
  // With tracing off the global tracer is a no-op: these cost a header read per activity.
  return [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })];
}

export function workerSinks(metrics: Metrics, tracing: Tracing | undefined): InjectedSinks<OutcomeSinks & { exporter: OpenTelemetryWorkflowExporter }> {
  return {
    ...outcomeSinks(metrics),
    exporter: tracing ? makeWorkflowExporter(tracing.spanProcessor, tracing.resource) : { export: { fn: () => undefined } },
  };
}
