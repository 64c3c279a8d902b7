import { ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleHandle, type ScheduleOptions, type ScheduleSummary } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { Config } from './config/schema';
import type { DataSyncInput } from './workflows';
import { LakebaseEnvironment, LakebasePipeline, LakebaseProfile } from './workflows/searchAttributes';

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
  /** When given, scheduled runs carry the pipeline's search attributes (filterable in the UI). */
  config?: Config;
}

export const scheduleIdFor = (pipeline: string) => `sync:${pipeline}`;

/** A Temporal schedule that starts `dataSync` for one pipeline. */
export async function createSyncSchedule(client: Client, o: SyncScheduleOptions): Promise<ScheduleHandle> {
  if (!o.cron === !o.every) throw new Error('give exactly one of --cron or --every');
  const p = o.config?.pipelines[o.pipeline];
  const options: ScheduleOptions = {
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
  };
  if (!p) return client.schedule.create(options);
  const tagged: ScheduleOptions = {
    ...options,
    action: {
      ...options.action,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: LakebasePipeline, value: o.pipeline },
        { key: LakebaseProfile, value: p.target.profile },
        { key: LakebaseEnvironment, value: p.target.environment },
      ]),
    },
  };
  try {
    return await client.schedule.create(tagged);
  } catch (err) {
    if (!/search attribute .* is not defined|not a valid search attribute/i.test((err as Error).message)) throw err;
    process.emitWarning('Lakebase search attributes are not registered; scheduled runs will not be filterable. Run `lakebase-worker setup`.');
    return client.schedule.create(options);
  }
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
