// The workflow interceptor modules bundled with the workflow code, by path only (nothing loaded
// here): the bundler, the bundle's cache key and the default build id all read this list.
export const WORKFLOW_INTERCEPTOR_MODULES = [
  // OpenTelemetry spans for the workflow and the activities it schedules (on or off, same bundle).
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
  // Outcome counts by failure type (src/telemetry/workflowOutcomes.ts).
  require.resolve('./workflowOutcomes'),
];
