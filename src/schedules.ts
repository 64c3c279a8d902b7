import { ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleHandle, type ScheduleSummary } from '@temporalio/client';
import type { DataSyncInput } from './workflows';

export interface SyncScheduleOptions {
  pipeline: string;
  taskQueue: string;
  /** Cron expression(s) (`*\/15 * * * *`) … */
  cron?: string;
  /** … or a fixed interval (`15 minutes`, `2s`). */
  every?: string;
  /** Default SKIP: a sync never runs twice at once. */
  overlap?: ScheduleOverlapPolicy;
  /** How far back missed runs are caught up after an outage (default 1 hour). */
  catchupWindow?: string;
  scheduleId?: string;
  paused?: boolean;
}

export const scheduleIdFor = (pipeline: string) => `sync:${pipeline}`;

/** A Temporal schedule that starts `dataSync` for one pipeline. */
export async function createSyncSchedule(client: Client, o: SyncScheduleOptions): Promise<ScheduleHandle> {
  if (!o.cron === !o.every) throw new Error('give exactly one of --cron or --every');
  return client.schedule.create({
    scheduleId: o.scheduleId ?? scheduleIdFor(o.pipeline),
    spec: o.cron ? { cronExpressions: [o.cron] } : { intervals: [{ every: o.every! as `${number} ${string}` }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'dataSync',
      // Temporal appends the scheduled time to this id.
      workflowId: `sync:${o.pipeline}:scheduled`,
      taskQueue: o.taskQueue,
      args: [{ pipeline: o.pipeline } satisfies DataSyncInput],
      staticSummary: `Scheduled sync of pipeline **${o.pipeline}**`,
    },
    memo: { pipeline: o.pipeline, spec: o.cron ? `cron ${o.cron}` : `every ${o.every}` },
    policies: { overlap: o.overlap ?? ScheduleOverlapPolicy.SKIP, catchupWindow: o.catchupWindow ?? '1 hour' },
    state: { paused: o.paused ?? false, note: o.paused ? 'created paused' : undefined },
  });
}

export async function listSchedules(client: Client): Promise<ScheduleSummary[]> {
  const out: ScheduleSummary[] = [];
  for await (const s of client.schedule.list()) out.push(s);
  return out;
}

export function describeSchedule(d: ScheduleDescription): string {
  const spec = typeof d.memo?.spec === 'string' ? d.memo.spec : `${d.spec.calendars?.length ?? 0} calendar(s), ${d.spec.intervals?.length ?? 0} interval(s)`;
  const recent = d.info.recentActions.slice(-3).map((a) => `${a.takenAt.toISOString()} → ${a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : ''}`);
  return [
    `${d.scheduleId}: ${d.state.paused ? 'paused' : 'active'}${d.state.note ? ` (${d.state.note})` : ''}`,
    `  spec: ${spec || '(none)'}; overlap: ${d.policies.overlap}; catch-up window: ${d.policies.catchupWindow} ms`,
    `  next: ${d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()).join(', ') || '—'}`,
    `  recent: ${recent.join('; ') || '—'}`,
  ].join('\n');
}
