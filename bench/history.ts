// What a sync's own Temporal history says: how long it ran, which worker ran which activity, and
// when each activity was scheduled and closed (the time of a phase such as delete detection).
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time';

type History = temporal.api.history.v1.IHistory;

/** One scheduled activity: first scheduled to its last attempt's close (completed, failed, timed out). */
export interface ActivityRun {
  type: string;
  scheduledMs: number;
  closedMs: number | null;
  /** Attempt that closed it (1 unless retried). */
  attempt: number;
  /** The completed activity's result, decoded (JSON payloads; no codec in the bench). */
  result?: unknown;
}

export interface SyncHistory {
  runs: number;
  /** First run's start to last run's close. */
  workflowSeconds: number;
  /** The first run's start (epoch ms), the origin of activityRuns' times in a timeline. */
  startMs: number;
  /** One entry per completed or failed activity attempt recorded in the history. */
  activities: { type: string; identity: string }[];
  /** Every scheduled activity with its times, in history order. */
  activityRuns: ActivityRun[];
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
  const activityRuns: ActivityRun[] = [];
  for (const h of histories) {
    const scheduled = new Map<string, ActivityRun>();
    const attempts = new Map<string, number>();
    for (const e of h.events ?? []) {
      const at = e.eventTime ? tsToMs(e.eventTime) : 0;
      const s = e.activityTaskScheduledEventAttributes;
      if (s) {
        const r: ActivityRun = { type: s.activityType?.name ?? '?', scheduledMs: at, closedMs: null, attempt: 1 };
        scheduled.set(String(e.eventId), r);
        activityRuns.push(r);
      }
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        activities.push({ type: scheduled.get(String(started.scheduledEventId))?.type ?? '?', identity: started.identity ?? '?' });
        attempts.set(String(started.scheduledEventId), started.attempt ?? 1);
      }
      const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
      const r = closed && scheduled.get(String(closed.scheduledEventId));
      if (r) {
        r.closedMs = at;
        r.attempt = attempts.get(String(closed.scheduledEventId)) ?? 1;
        const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
        if (payload) r.result = defaultPayloadConverter.fromPayload(payload);
      }
    }
  }
  return { runs: histories.length, workflowSeconds: (tsToMs(last.eventTime) - tsToMs(first.eventTime)) / 1000, startMs: tsToMs(first.eventTime), activities, activityRuns };
}

/**
 * Seconds from the first scheduling of an activity of `types` to the close of the last one: the
 * time of a phase of the workflow as its history recorded it (queueing and retries included).
 */
export function phaseSeconds(runs: ActivityRun[], types: string[]): number | null {
  const mine = runs.filter((r) => types.includes(r.type));
  if (mine.length === 0 || mine.some((r) => r.closedMs === null)) return null;
  return (Math.max(...mine.map((r) => r.closedMs!)) - Math.min(...mine.map((r) => r.scheduledMs))) / 1000;
}

/**
 * Where a workflow's time went (BENCH_TIMELINE=1): per activity type its count and summed seconds,
 * and the workflow time no activity covered (scheduling, workflow tasks, the gaps between steps).
 */
export function timeline(h: SyncHistory): string {
  const byType = new Map<string, { n: number; ms: number }>();
  const spans: [number, number][] = [];
  for (const r of h.activityRuns) {
    if (r.closedMs === null) continue;
    const t = byType.get(r.type) ?? { n: 0, ms: 0 };
    t.n++;
    t.ms += r.closedMs - r.scheduledMs;
    byType.set(r.type, t);
    spans.push([r.scheduledMs, r.closedMs]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    covered += b - Math.max(a, end);
    end = b;
  }
  const total = h.workflowSeconds * 1000;
  const types = [...byType].map(([k, v]) => `${k} ×${v.n} ${(v.ms / 1000).toFixed(2)} s`).join(', ');
  return `workflow ${(total / 1000).toFixed(2)} s: no activity running for ${((total - covered) / 1000).toFixed(2)} s; ${types}`;
}
