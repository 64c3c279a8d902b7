import { ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';

import { explainScheduleError } from '../schedules';

export { createSyncSchedule, cronProblem, describeSchedule, listSchedules, ScheduleError } from '../schedules';

export type ScheduleAction = 'describe' | 'pause' | 'unpause' | 'trigger' | 'delete';

/** One action on a schedule; returns its description afterwards (undefined once deleted). */
export async function scheduleAction(client: Client, scheduleId: string, action: ScheduleAction): Promise<ScheduleDescription | undefined> {
  try {
    return await act(client, scheduleId, action);
  } catch (err) {
    throw await explainScheduleError(client, err, scheduleId);
  }
}

async function act(client: Client, scheduleId: string, action: ScheduleAction): Promise<ScheduleDescription | undefined> {
  const h = client.schedule.getHandle(scheduleId);
  if (action === 'pause') await h.pause('paused from the CLI');
  if (action === 'unpause') await h.unpause('unpaused from the CLI');
  if (action === 'trigger') await h.trigger();
  if (action === 'delete') {
    await h.delete();
    return undefined;
  }
  return h.describe();
}

/** Runs a schedule for a past time range; every missed run is buffered (overlap policy applies). */
export async function backfillSchedule(client: Client, scheduleId: string, start: Date, end: Date): Promise<ScheduleDescription> {
  const h = client.schedule.getHandle(scheduleId);
  try {
    await h.backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
    return await h.describe();
  } catch (err) {
    throw await explainScheduleError(client, err, scheduleId);
  }
}
