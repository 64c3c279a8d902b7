// What a waiting command (and `status`) says about a run besides its progress: whether any worker
// polls its task queue (Temporal itself only lets a query time out, or a start wait for ever), and
// the failure of an activity it is retrying (otherwise only visible in the UI's history).
import { ActivityFailure, ApplicationFailure, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { redactSecrets } from '../redact';
import { pollUntilStopped } from '../progress';
import { readConfigSource } from '../configSource';

/**
 * A poller the server last heard from longer ago than this is gone: a live worker's long poll
 * renews it at least every ~70 s, and the server forgets pollers only after 5 minutes.
 */
const POLLER_STALE_MS = 2 * 60_000;

/** Workers polling the task queue for workflow tasks (what any run needs first), as the server saw them recently. */
export async function workflowPollers(client: Client, taskQueue: string): Promise<{ identity: string; lastAccess?: Date }[]> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  return (res.pollers ?? [])
    .map((p) => ({ identity: p.identity ?? '?', lastAccess: p.lastAccessTime?.seconds != null ? new Date(Number(p.lastAccessTime.seconds) * 1000) : undefined }))
    .filter((p) => !p.lastAccess || now - p.lastAccess.getTime() < POLLER_STALE_MS);
}

/** The config fingerprints the polling workers name in their identity (src/worker.ts workerIdentity); workers that name none are left out. */
export const pollerFingerprints = (pollers: { identity: string }[]): string[] =>
  [...new Set(pollers.map((p) => /@([0-9a-f]{12})$/.exec(p.identity)?.[1]).filter((f): f is string => !!f))];

/**
 * When every polling worker that names its config runs another one than `fingerprint` (the file
 * changed since they started): what to say, else undefined.
 */
export function configDriftMessage(pollers: { identity: string }[], taskQueue: string, fingerprint: string | undefined, whose = 'the file this command read'): string | undefined {
  const running = pollerFingerprints(pollers);
  if (!fingerprint || running.length === 0 || running.includes(fingerprint)) return undefined;
  return `the worker(s) polling task queue ${taskQueue} run config ${running.join(', ')}, not ${fingerprint} (${whose}): restart them to pick up changes`;
}

/** What to say when nobody polls: the queue, and the command that starts a worker on it. */
export function noWorkerMessage(taskQueue: string, configFile = 'lakebase.yaml'): string {
  return `no worker is polling task queue ${taskQueue}: nothing will run until one does; start one with: lakebase-worker worker --config ${configFile}`;
}

/** The no-worker message when no worker polls the queue, else undefined (an unanswerable describe counts as polled: no false alarm). */
export async function noWorkerOn(client: Client, taskQueue: string, configFile?: string): Promise<string | undefined> {
  const pollers = await workflowPollers(client, taskQueue).catch(() => null);
  return pollers && pollers.length === 0 ? noWorkerMessage(taskQueue, configFile) : undefined;
}

/** A run's failure as a user reads it: the innermost typed cause, its type and message (secrets scrubbed). */
export function failureText(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof WorkflowFailedError || e instanceof ActivityFailure) && e.cause) e = e.cause;
  const text = e instanceof ApplicationFailure ? `${e.type ?? 'failure'}: ${e.message}` : e instanceof Error ? e.message : String(e);
  return redactSecrets(text);
}

export interface ActivityFailureView {
  activity: string;
  attempt: number;
  /** The ApplicationFailure type (LakebaseSqlError, …), when it has one. */
  type?: string;
  /** Its message, secrets scrubbed. */
  message: string;
}

/** `syncChunk attempt 3 failed: LakebaseTransientError: …` */
export const formatActivityFailure = (f: ActivityFailureView): string => `${f.activity} attempt ${f.attempt} failed: ${f.type ? `${f.type}: ` : ''}${f.message}`;

/** The newest failure of an activity the run is retrying (a pending activity's last failure), or null. */
export async function lastActivityFailure(handle: WorkflowHandle): Promise<ActivityFailureView | null> {
  const d = await handle.describe();
  for (const a of d.raw.pendingActivities ?? []) {
    const f = a.lastFailure;
    if (!f?.message) continue;
    // The SDK wraps an activity's ApplicationFailure; its cause carries the type and the words.
    const inner = f.cause?.message ? f.cause : f;
    const type = inner.applicationFailureInfo?.type ?? f.applicationFailureInfo?.type ?? undefined;
    return { activity: a.activityType?.name ?? '?', attempt: a.attempt ?? 0, ...(type && { type }), message: redactSecrets(inner.message ?? '') };
  }
  return null;
}

export interface WatchOptions {
  taskQueue: string;
  /** The config file the command read, for the worker command it suggests. */
  configFile?: string;
  /** The run to report activity failures of (none yet: only the task queue is watched). */
  workflowId?: string;
  /** The fingerprint of the config the command read: a worker running another is said once. */
  configFingerprint?: string;
  /** Where notices go (the CLI prints them on stderr, beside the progress on stdout). */
  say: (line: string) => void;
  everyMs?: number;
}

/**
 * While a command waits: every few seconds, whether a worker polls the task queue (said once when
 * none does, and again when one comes), whether the workers run the config the command read, and
 * each new failure of an activity the run retries. `round` runs one check; `start` runs them every
 * few seconds and returns a stop function that settles the call in flight (pollUntilStopped).
 */
export function createWatch(client: Client, o: WatchOptions): { round(signal?: AbortSignal): Promise<void>; start(): () => Promise<void> } {
  let saidNoWorker = false;
  let saidDrift = false;
  const fingerprint = o.configFingerprint ?? fingerprintOf(o.configFile);
  let lastFailure = '';
  const check = async () => {
    const pollers = await workflowPollers(client, o.taskQueue).catch(() => null);
    return {
      noWorker: pollers && pollers.length === 0 ? noWorkerMessage(o.taskQueue, o.configFile) : undefined,
      drift: pollers ? configDriftMessage(pollers, o.taskQueue, fingerprint) : undefined,
      failure: o.workflowId ? await lastActivityFailure(client.workflow.getHandle(o.workflowId)).catch(() => null) : null,
    };
  };
  const show = ({ noWorker, drift, failure }: Awaited<ReturnType<typeof check>>) => {
    if (drift && !saidDrift) o.say(drift);
    saidDrift ||= !!drift;
    if (noWorker && !saidNoWorker) o.say(noWorker);
    else if (!noWorker && saidNoWorker) o.say(`a worker is polling task queue ${o.taskQueue} now`);
    saidNoWorker = !!noWorker;
    const text = failure ? formatActivityFailure(failure) : '';
    if (text && text !== lastFailure) o.say(`${text} (retrying)`);
    lastFailure = text;
  };
  return {
    round: async (signal) => show(signal ? await client.withAbortSignal(signal, check) : await check()),
    start: () => pollUntilStopped((signal) => client.withAbortSignal(signal, check), show, o.everyMs ?? (Number(process.env.LAKEBASE_HEALTH_INTERVAL_MS) || 3_000)),
  };
}

/** The watch of createWatch, started. */
export const watchWhileWaiting = (client: Client, o: WatchOptions): (() => Promise<void>) => createWatch(client, o).start();

function fingerprintOf(file: string | undefined): string | undefined {
  try {
    return file ? readConfigSource(file).fingerprint : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for `wait` with the watch running beside it (stopped, and settled, when it ends either way). */
export async function waitWatched<T>(client: Client, o: WatchOptions, wait: () => Promise<T>): Promise<T> {
  const watch = createWatch(client, o);
  // One round before waiting: a run that fails at once (a job the worker's config lacks) still gets
  // its notices (no worker, another config) printed before its error.
  await watch.round().catch(() => undefined);
  const stop = watch.start();
  try {
    return await wait();
  } finally {
    await stop();
  }
}

/**
 * The run's page in the Temporal UI: `$TEMPORAL_UI_URL` when set, Temporal Cloud's for a cloud
 * address, else the dev server's (its UI listens 1000 above the frontend port).
 */
export function temporalUiUrl(address: string, namespace: string, workflowId: string): string | undefined {
  const path = `/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  const base = process.env.TEMPORAL_UI_URL?.replace(/\/+$/, '');
  if (base) return `${base}${path}`;
  if (/\.tmprl\.cloud(:\d+)?$/.test(address)) return `https://cloud.temporal.io${path}`;
  const m = /^(localhost|127\.0\.0\.1|\[::1\]):(\d+)$/.exec(address);
  return m ? `http://${m[1]}:${Number(m[2]) + 1000}${path}` : undefined;
}
