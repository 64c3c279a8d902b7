// Workflow side (bundled into the workflow code): reports how each sync, job, verify run or group
// ended through a sink, so the worker can count outcomes by failure type in Prometheus. Sinks are
// not called during replay and add nothing to the history: replays of older runs are unaffected.
import { CancelledFailure, TemporalFailure } from '@temporalio/common';
import { isCancellation, proxySinks, workflowInfo, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

export interface WorkflowOutcome {
  workflowType: string;
  /** The pipeline, job or group the run is for ('' when the input names none). */
  name: string;
  outcome: 'completed' | 'failed' | 'cancelled';
  /** The innermost ApplicationFailure type (e.g. LakebaseTokenExpired), or the failure's class name. */
  failureType: string;
}

export interface OutcomeSinks extends Sinks {
  lakebaseOutcomes: { finished(outcome: WorkflowOutcome): void };
}

const { lakebaseOutcomes } = proxySinks<OutcomeSinks>();

export function failureTypeOf(err: unknown): string {
  let deepest = '';
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && type) deepest = type;
    else if (!deepest && e instanceof TemporalFailure) deepest = e.name;
  }
  return deepest || (err instanceof Error ? err.name : 'unknown');
}

function nameOf(args: unknown[]): string {
  const first = args[0];
  if (typeof first !== 'object' || first === null) return '';
  for (const key of ['pipeline', 'job', 'group'] as const) {
    const v = (first as Record<string, unknown>)[key];
    if (typeof v === 'string') return v;
  }
  return '';
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        const base = { workflowType: workflowInfo().workflowType, name: nameOf(input.args) };
        try {
          const result = await next(input);
          lakebaseOutcomes.finished({ ...base, outcome: 'completed', failureType: '' });
          return result;
        } catch (err) {
          // continue-as-new is not an end; other non-failures fail the workflow task, which retries.
          if (err instanceof CancelledFailure || isCancellation(err)) lakebaseOutcomes.finished({ ...base, outcome: 'cancelled', failureType: '' });
          else if (err instanceof TemporalFailure) lakebaseOutcomes.finished({ ...base, outcome: 'failed', failureType: failureTypeOf(err) });
          throw err;
        }
      },
    },
  ],
});
