import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleHandle, type ScheduleOptions, type ScheduleSummary } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { Config } from './config/schema';
import type { DataSyncInput } from './workflows';
import { LakebaseEnvironment, LakebasePipeline, LakebaseProfile } from './workflows/searchAttributes';
import { duration } from './humanize';
import { configMemo } from './configSource';
import { UNREGISTERED_SEARCH_ATTRIBUTE } from './client/indexedStart';

/** A schedule command Temporal refused, in our words: what was wrong and the command that helps. */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

/** Every message of an error and its causes (the SDK puts the server's answer in `cause`). */
const messages = (err: unknown): string => {
  const out: string[] = [];
  for (let e = err, i = 0; e instanceof Error && i < 6; e = e.cause, i++) out.push(e.message);
  return out.join(' | ');
};

const CRON_FIELDS = 'minute hour day-of-month month day-of-week';

/** A cron expression Temporal accepts: 5 fields (6–7 with seconds and year), or an @-shortcut; else what is wrong with it. */
export function cronProblem(cron: string): string | undefined {
  const text = cron.trim();
  if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(text) || /^@every\s+\S+/.test(text)) return undefined;
  const fields = text.split(/\s+/).filter(Boolean).length;
  if (fields >= 5 && fields <= 7) return undefined;
  return `--cron "${cron}": a cron expression has 5 fields (${CRON_FIELDS}), e.g. "*/15 * * * *" for every 15 minutes; this has ${fields}`;
}

/** The ids of the schedules there are, for an error naming one that is not. */
async function scheduleIds(client: Client): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const s of client.schedule.list()) {
      ids.push(s.scheduleId);
      if (ids.length >= 20) break;
    }
  } catch {
    // Listing is only a hint.
  }
  return ids;
}

/** Temporal's schedule errors in our words (not found, already exists, a spec it refuses); anything else as it was. */
export async function explainScheduleError(client: Client, err: unknown, scheduleId: string): Promise<unknown> {
  const text = messages(err);
  if (err instanceof ScheduleNotFoundError || /workflow not found for ID: temporal-sys-scheduler:/i.test(text)) {
    const ids = await scheduleIds(client);
    const near = ids.find((id) => id === `sync:${scheduleId}` || id.endsWith(`:${scheduleId}`));
    return new ScheduleError(
      `no schedule "${scheduleId}"${near ? `; did you mean ${near}?` : ''} (schedules: ${ids.join(', ') || 'none'}; lakebase-worker schedule list shows them)`,
    );
  }
  if (err instanceof ScheduleAlreadyRunning || /schedule already (exists|running)/i.test(text))
    return new ScheduleError(`schedule ${scheduleId} already exists; see it with lakebase-worker schedule describe ${scheduleId}, or delete it first (lakebase-worker schedule delete ${scheduleId})`);
  if (/CronString/i.test(text))
    return new ScheduleError(`Temporal refused the cron expression (${text.split(' | ').pop()}); it takes 5 fields (${CRON_FIELDS}), e.g. "*/15 * * * *"`);
  return err;
}

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
  /** The config file the CLI read: each scheduled run's memo names it, as a started run's does. */
  configFile?: string;
}

export const scheduleIdFor = (pipeline: string) => `sync:${pipeline}`;

/** A Temporal schedule that starts `dataSync` for one pipeline. */
export async function createSyncSchedule(client: Client, o: SyncScheduleOptions): Promise<ScheduleHandle> {
  if (!o.cron === !o.every) throw new ScheduleError('give exactly one of --cron or --every');
  const badCron = o.cron !== undefined ? cronProblem(o.cron) : undefined;
  if (badCron) throw new ScheduleError(badCron);
  const id = o.scheduleId ?? scheduleIdFor(o.pipeline);
  try {
    return await createTagged(client, o);
  } catch (err) {
    // The SDK turns the server's "Invalid schedule spec" into a TypeError with the server's words ("Minute is not in range [0-59]").
    if (err instanceof TypeError && !(err instanceof ScheduleError)) {
      const flag = o.cron !== undefined ? `--cron "${o.cron}"` : `--every "${o.every}"`;
      const hint = o.cron !== undefined ? `fields: ${CRON_FIELDS}, e.g. "*/15 * * * *"` : 'e.g. "15 minutes" or "1 hour"';
      throw new ScheduleError(`${flag}: Temporal refused it: ${err.message} (${hint})`);
    }
    throw await explainScheduleError(client, err, id);
  }
}

async function createTagged(client: Client, o: SyncScheduleOptions): Promise<ScheduleHandle> {
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
      ...configMemo(o.configFile),
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
    // The server's words are in the error's cause (ServiceError "Failed to create schedule").
    if (!UNREGISTERED_SEARCH_ATTRIBUTE.test(messages(err))) throw err;
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
    `  spec: ${spec || '(none)'}; overlap: ${d.policies.overlap}; catch-up window: ${duration(Number(d.policies.catchupWindow))}`,
    `  next: ${d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()).join(', ') || '—'}`,
    `  recent: ${recent.join('; ') || '—'}`,
  ].join('\n');
}
