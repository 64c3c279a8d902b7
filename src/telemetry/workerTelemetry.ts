// What the worker installs for outcomes and traces: the workflow interceptor modules (bundled with
// the workflow code, the same bundle whether tracing is on or off, so the build id does not depend
// on it), the activity interceptors and the sinks the workflow side reports through.
import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor, makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { Metrics } from '../metrics';
import { outcomeSinks, WORKFLOW_OUTCOMES_MODULE } from './outcomeMetrics';
import type { Tracing } from './tracing';
import type { OutcomeSinks } from './workflowOutcomes';

export const OTEL_WORKFLOW_INTERCEPTORS_MODULE = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** Bundled with the workflow code (bundleWorkflowCode's workflowInterceptorModules). */
export const WORKFLOW_INTERCEPTOR_MODULES = [OTEL_WORKFLOW_INTERCEPTORS_MODULE, WORKFLOW_OUTCOMES_MODULE];

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
