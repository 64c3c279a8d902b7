// What a sync's own Temporal history says: how long it ran and which worker ran which activity.
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time';

type History = temporal.api.history.v1.IHistory;

export interface SyncHistory {
  runs: number;
  /** First run's start to last run's close. */
  workflowSeconds: number;
  /** One entry per completed or failed activity attempt recorded in the history. */
  activities: { type: string; identity: string }[];
}

/** Histories of every run of `workflowId`, oldest first (continue-as-new chains back through continuedExecutionRunId). */
async function runHistories(client: Client, workflowId: string): Promise<History[]> {
  const out: History[] = [];
  let runId: string | undefined;
  for (;;) {
    const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    out.unshift(h);
    const previous = h.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!previous) return out;
    runId = previous;
  }
}

export async function readSyncHistory(client: Client, workflowId: string): Promise<SyncHistory> {
  const histories = await runHistories(client, workflowId);
  const first = histories[0]?.events?.[0];
  const lastEvents = histories[histories.length - 1]?.events ?? [];
  const last = lastEvents[lastEvents.length - 1];
  if (!first?.eventTime || !last?.eventTime) throw new Error(`workflow ${workflowId} has an empty history`);
  const activities: SyncHistory['activities'] = [];
  for (const h of histories) {
    const scheduled = new Map<string, string>();
    for (const e of h.events ?? []) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '?');
      const started = e.activityTaskStartedEventAttributes;
      if (started) activities.push({ type: scheduled.get(String(started.scheduledEventId)) ?? '?', identity: started.identity ?? '?' });
    }
  }
  return { runs: histories.length, workflowSeconds: (tsToMs(last.eventTime) - tsToMs(first.eventTime)) / 1000, activities };
}
