import { ApplicationFailure, ChildWorkflowFailure, executeChild, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import { dataSync, type SyncProgress } from './dataSync';
import { WORKFLOW_FAILURES } from '../failureTypes';
import { planGroup } from './activityCalls';


export interface SyncGroupInput {
  group: string;
}

export interface SyncGroupResult {
  group: string;
  succeeded: { pipeline: string; rowsWritten: number }[];
  failed: { pipeline: string; error: string; type?: string }[];
}

function rootCause(err: unknown): { message: string; type?: string } {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return { message: e instanceof Error ? e.message : String(e), type: e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined };
}

/** Multi-table sync: one child dataSync per pipeline, at most `parallelism` at once; a failing table fails alone. */
export async function syncGroup({ group }: SyncGroupInput): Promise<SyncGroupResult> {
  const plan = await planGroup({ group });
  const result: SyncGroupResult = { group, succeeded: [], failed: [] };
  const queue = [...plan.pipelines];
  const report = () =>
    setCurrentDetails(
      `group ${group}: ${result.succeeded.length} done, ${result.failed.length} failed, ${queue.length} waiting of ${plan.pipelines.length}` +
        (result.failed.length ? `\nfailed: ${result.failed.map((f) => f.pipeline).join(', ')}` : ''),
    );
  report();
  async function lane(): Promise<void> {
    for (let pipeline = queue.shift(); pipeline !== undefined; pipeline = queue.shift()) {
      try {
        const r: SyncProgress = await executeChild(dataSync, {
          workflowId: `sync:${pipeline}:${workflowInfo().workflowId}`,
          args: [{ pipeline }],
          staticSummary: `Sync pipeline **${pipeline}** (group ${group})`,
        });
        result.succeeded.push({ pipeline, rowsWritten: r.rowsWritten });
      } catch (err) {
        if (!(err instanceof ChildWorkflowFailure)) throw err;
        const cause = rootCause(err);
        result.failed.push({ pipeline, error: cause.message, type: cause.type });
      }
      report();
    }
  }
  await Promise.all(Array.from({ length: Math.min(plan.parallelism, plan.pipelines.length) }, lane));
  if (result.failed.length) {
    throw ApplicationFailure.create({
      type: WORKFLOW_FAILURES.syncGroupFailed,
      nonRetryable: true,
      message: `${result.failed.length} of ${plan.pipelines.length} pipelines failed: ${result.failed.map((f) => `${f.pipeline} (${f.type ?? 'error'}: ${f.error})`).join('; ')}`,
      details: [result],
    });
  }
  return result;
}
