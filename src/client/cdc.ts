// Starting, watching and stopping the cdc stream of a pipeline's slot (one workflow per slot).
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { z } from 'zod';
import type { Config } from '../config/schema';
import type { ConnectionReport } from '../db/diagnose';
import { cdcPipeline, slotNames } from '../sync/cdc/names';
import { cdcSnapshotProgressQuery } from '../workflows/cdcSnapshot';
import { cdcJoinSignal, cdcProgressQuery, cdcStopSignal, type CdcProgress, type CdcStreamInput } from '../workflows/cdcStream';
import { testConnectionViaWorker } from './connection';
import { failureText, formatActivityFailure, lastActivityFailure, noWorkerOn } from './runHealth';

/**
 * How long one stream segment holds its replication connection. Joins and stops end a segment
 * early, so nothing waits for it; it only bounds how often the reader reconnects. Set here, not
 * as the workflow's default, so streams started before keep theirs (30 s) across continue-as-new.
 */
export const SEGMENT_SECONDS = 3600;

/** `cdc:<slot>`: the stream of one replication slot, whichever pipelines share it. */
export const cdcWorkflowId = (slot: string) => `cdc:${slot}`;

type StreamHandle = WorkflowHandle<(i: CdcStreamInput) => Promise<CdcProgress>>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cdc pipelines of a sync group, in its order (`cdc start|status|stop --group G`); a group without one is an error naming it. */
export function cdcGroupPipelines(config: Config, group: string): string[] {
  const g = config.syncGroups[group];
  if (!g) throw new Error(`--group: unknown sync group "${group}"; defined: ${Object.keys(config.syncGroups).join(', ') || '(none)'}`);
  const names = g.pipelines.filter((p) => config.pipelines[p]?.mode === 'cdc');
  if (!names.length) throw new Error(`--group ${group}: no pipeline of the group has mode: cdc (${g.pipelines.join(', ')})`);
  return names;
}

/** The checks a join makes, run on a worker before anything is touched (cdc start, cdc start --dry-run). */
export function checkCdc(client: Client, opts: { config: Config; pipeline: string; taskQueue: string }): Promise<ConnectionReport> {
  const p = cdcPipeline(opts.config, opts.pipeline);
  return testConnectionViaWorker(client, { profile: p.source.profile, environment: p.source.environment, taskQueue: opts.taskQueue, pipeline: opts.pipeline });
}

/** Starts the slot's stream, or joins the pipeline to the one running; returns once the signal is in (see awaitJoin). */
export async function startCdc(
  client: Client,
  opts: { config: Config; pipeline: string; taskQueue: string; stream?: Pick<CdcStreamInput, 'runSeconds' | 'heartbeatTimeout' | 'segmentsPerRun' | 'snapshotChunksPerRun' | 'figuresSeconds'> },
): Promise<{ workflowId: string; slot: string }> {
  const [started] = await startCdcPipelines(client, { ...opts, pipelines: [opts.pipeline] });
  return started!;
}

/**
 * Starts several pipelines (`cdc start --group`): those of one slot go into a new stream together,
 * so they join before its first segment rather than one by one into a running one.
 */
export async function startCdcPipelines(
  client: Client,
  opts: { config: Config; pipelines: string[]; taskQueue: string; stream?: Pick<CdcStreamInput, 'runSeconds' | 'heartbeatTimeout' | 'segmentsPerRun' | 'snapshotChunksPerRun' | 'figuresSeconds'> },
): Promise<{ pipeline: string; workflowId: string; slot: string }[]> {
  const bySlot = new Map<string, string[]>();
  for (const n of opts.pipelines) {
    const { slot } = slotNames(opts.config, n);
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), n]);
  }
  const out: { pipeline: string; workflowId: string; slot: string }[] = [];
  for (const [slot, members] of bySlot) {
    const workflowId = cdcWorkflowId(slot);
    const p = opts.config.pipelines[members[0]!]!;
    const handle = await client.workflow.signalWithStart<(i: CdcStreamInput) => Promise<CdcProgress>, [string]>('cdcStream', {
      taskQueue: opts.taskQueue,
      workflowId,
      args: [{ slot, pipelines: members, runSeconds: SEGMENT_SECONDS, ...opts.stream }],
      signal: cdcJoinSignal,
      signalArgs: [members[0]!],
      staticSummary: `CDC stream of slot **${slot}**`,
      staticDetails: `Logical replication from ${p.source.profile}/${p.source.environment}: slot \`${slot}\`; pipelines join with \`cdc start\`, leave with \`cdc stop\`.`,
    });
    // A stream that was already running got only the first join: the others ask for themselves (a member ignores it).
    for (const m of members.slice(1)) await handle.signal(cdcJoinSignal, m);
    out.push(...members.map((pipeline) => ({ pipeline, workflowId, slot })));
  }
  return out;
}

export type JoinAnswer = { joined: true; phase: 'snapshot' | 'streaming' } | { joined: false; message: string };

/**
 * Waits for the stream to answer the pipeline's join: it copies (snapshot) or streams, or the
 * stream failed (the failure's text), or it still retries after timeoutMs (the last failure).
 */
export async function awaitJoin(client: Client, opts: { workflowId: string; pipeline: string; timeoutMs?: number }): Promise<JoinAnswer> {
  const handle: StreamHandle = client.workflow.getHandle(opts.workflowId);
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') {
      try {
        await handle.result();
        return { joined: false, message: `the stream ${opts.workflowId} ended (${status.name.toLowerCase()}) before ${opts.pipeline} joined` };
      } catch (err) {
        return { joined: false, message: failureText(err) };
      }
    }
    const progress = await handle.query(cdcProgressQuery).catch(() => null);
    const phase = progress?.pipelines[opts.pipeline];
    if (phase === 'snapshot' || phase === 'streaming') return { joined: true, phase };
    if (Date.now() > deadline) {
      const last = await lastActivityFailure(handle).catch(() => null);
      const noWorker = last ? undefined : await noWorkerOn(client, (await handle.describe()).taskQueue);
      return { joined: false, message: `${opts.pipeline} has not joined ${opts.workflowId} after ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s${last ? `; ${formatActivityFailure(last)}` : noWorker ? `; ${noWorker}` : ''}` };
    }
    await sleep(300);
  }
}

/**
 * The stream's figures (its progress query), or null when no stream of the slot is running; a
 * running stream no worker polls for cannot answer a query: `noWorker` says so instead.
 */
export async function cdcProgress(client: Client, config: Config, pipeline: string, configFile?: string): Promise<{ slot: string; progress: CdcProgress | null; noWorker?: string }> {
  const { slot } = slotNames(config, pipeline);
  try {
    const handle = client.workflow.getHandle(cdcWorkflowId(slot));
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return { slot, progress: null };
    const noWorker = await noWorkerOn(client, d.taskQueue, configFile);
    if (noWorker) return { slot, progress: null, noWorker };
    const progress = await handle.query(cdcProgressQuery);
    return { slot, progress: { ...progress, ...(await segmentFigures(client, d)), snapshots: await snapshotFigures(client, progress.snapshots) } };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { slot, progress: null };
    throw err;
  }
}

/**
 * Initial loads as their child workflows report them (patch cdc-snapshot-child: the stream's own
 * entries stay 0); a load run inline by an older stream, or a child that cannot answer, keeps the stream's.
 */
async function snapshotFigures(client: Client, snapshots: CdcProgress['snapshots']): Promise<CdcProgress['snapshots']> {
  const out = { ...snapshots };
  await Promise.all(
    Object.entries(snapshots).map(async ([pipeline, s]) => {
      if (!s.child) return;
      const child = await client.workflow.getHandle(s.child).query(cdcSnapshotProgressQuery).catch(() => null);
      if (child) out[pipeline] = { ...snapshots[pipeline], partitions: child.partitions, done: child.done, rowsCopied: child.rowsCopied };
    }),
  );
  return out;
}

/** What a running segment heartbeats (activities/cdc.ts); only the figures status shows. */
const SegmentBeat = z.object({
  appliedLsn: z.string().nullable().optional(),
  confirmedLsn: z.string().nullable().optional(),
  lastCommitTime: z.string().nullable().optional(),
  rowsPerSecond: z.number().optional(),
  lagBytes: z.number().optional(),
  lagSeconds: z.number().optional(),
  retainedWalBytes: z.number().optional(),
});

/**
 * The running segment's latest heartbeat: a segment holds its connection for runSeconds (an hour
 * by default), and the workflow's own figures are those of the last one that ended.
 */
async function segmentFigures(client: Client, d: WorkflowExecutionDescription): Promise<Partial<CdcProgress>> {
  const beat = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'cdcStream')?.heartbeatDetails?.payloads;
  if (!beat?.length) return {};
  const raw = await decodeFromPayloadsAtIndex<unknown>(client.options.loadedDataConverter, 0, beat).catch(() => null);
  const r = SegmentBeat.safeParse(raw);
  if (!r.success) return {};
  const out: Partial<CdcProgress> = {};
  for (const [k, v] of Object.entries(r.data)) if (v !== undefined && v !== null) Object.assign(out, { [k]: v });
  return out;
}

export interface CdcStopResult {
  slot: string;
  /** The stream's last figures when this stop ended it (the pipeline was its last). */
  ended: CdcProgress | null;
  /** Pipelines still in the running stream after this one left. */
  others: string[];
  /** No running stream had the pipeline: nothing was signalled, the caller leaves the slot itself (cdc stop does). */
  notStreaming: boolean;
}

/**
 * The pipeline leaves the stream (with dropSlot, the slot goes too when it was the last): waits until
 * the stream has processed the stop, and for the stream to end when it was the last pipeline.
 */
export async function stopCdc(client: Client, opts: { config: Config; pipeline: string; dropSlot: boolean; timeoutMs?: number }): Promise<CdcStopResult> {
  const { slot } = slotNames(opts.config, opts.pipeline);
  const handle: StreamHandle = client.workflow.getHandle(cdcWorkflowId(slot));
  const running = await handle.describe().then((d) => d.status.name === 'RUNNING', (err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  });
  const before = running ? await handle.query(cdcProgressQuery) : null;
  if (!before || !(opts.pipeline in before.pipelines)) return { slot, ended: null, others: before ? Object.keys(before.pipelines) : [], notStreaming: true };
  await handle.signal(cdcStopSignal, { pipeline: opts.pipeline, dropSlot: opts.dropSlot });
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  for (;;) {
    if (Date.now() > deadline)
      throw new Error(`the stream ${cdcWorkflowId(slot)} has not processed the stop of ${opts.pipeline} within ${Math.round((opts.timeoutMs ?? 300_000) / 1000)} s (the stop is queued: it takes effect once a worker runs the stream); is a worker running on its task queue?`);
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return { slot, ended: await handle.result(), others: [], notStreaming: false };
    const now = await handle.query(cdcProgressQuery).catch(() => null);
    if (now && !(opts.pipeline in now.pipelines)) {
      const others = Object.keys(now.pipelines);
      if (others.length === 0) return { slot, ended: await handle.result(), others, notStreaming: false };
      return { slot, ended: null, others, notStreaming: false };
    }
    await sleep(200);
  }
}
