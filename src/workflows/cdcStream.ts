import { ActivityFailure, ApplicationFailure, CancellationScope, ChildWorkflowFailure, condition, continueAsNew, defineQuery, defineSignal, executeChild, isCancellation, patched, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import type { CdcStreamResult } from '../activities/cdc';
import { CDC_FIGURES_SIGNAL } from '../activities/types';
import type { CdcStatus } from '../sync/cdc/types';
import { NON_RETRYABLE } from '../failureTypes';
import { cdcStreamActivities, stepActivities, streamingActivities } from './activityCalls';
import { cdcSnapshot, cdcSnapshotWorkflowId } from './cdcSnapshot';
import { inLanes } from './lanes';

/**
 * One workflow per replication slot (`cdc:<slot>`): the cdc pipelines of a source database share
 * the slot, so one reader applies changes for all of them. A pipeline joins (initial load, then
 * streaming) by signal; the stream runs in segments of runSeconds, each a long activity that
 * heartbeats, until every pipeline has been stopped. Continues as new to keep the history small.
 */

export interface CdcStreamInput {
  slot: string;
  /** Pipelines of the slot, in the order they joined. */
  pipelines: string[];
  /** Seconds each stream activity runs before it reports its figures (default 30). */
  runSeconds?: number;
  /** Continue as new after this many segments (default 100, or when Temporal suggests it). */
  segmentsPerRun?: number;
  /** How soon a stream whose worker died is resumed elsewhere (default 30 seconds). */
  heartbeatTimeout?: string;
  /** How often, at most, a running segment sends its figures (default 60 seconds). */
  figuresSeconds?: number;
  /** An initial load (a child workflow) continues as new after this many chunks (default: when Temporal suggests it). */
  snapshotChunksPerRun?: number;
  /** Set by continue-as-new. */
  resume?: CdcProgress;
}

export interface CdcProgress extends Omit<CdcStatus, 'pipeline' | 'phase'> {
  /** Pipelines by phase: copying their table, or streaming. */
  pipelines: Record<string, 'joining' | 'snapshot' | 'streaming' | 'parked'>;
  /**
   * Initial loads in flight: partitions done of total, rows copied. Under patch cdc-snapshot-child
   * the load is a child workflow whose figures are its own (`cdc status` reads them there); here they stay 0.
   */
  snapshots: Record<string, { partitions: number; done: number; rowsCopied: number; child?: string }>;
  rowsPerSecond: number;
  segments: number;
  run: number;
  /** The newest source commit applied (ISO), as the stream last reported. */
  lastCommitTime: string | null;
  stopped: boolean;
}

export interface CdcStopRequest {
  pipeline: string;
  /** Drop the slot when this is its last pipeline. */
  dropSlot: boolean;
}

export const cdcProgressQuery = defineQuery<CdcProgress>('progress');
export const cdcJoinSignal = defineSignal<[string]>('cdcJoin');
export const cdcStopSignal = defineSignal<[CdcStopRequest]>('cdcStop');
/** A running segment's figures, from its reader (the segment's result carries the final ones). */
export const cdcFiguresSignal = defineSignal<[CdcStreamResult]>(CDC_FIGURES_SIGNAL);

const steps = stepActivities(NON_RETRYABLE);

function describe(p: CdcProgress, slot: string): string {
  const phases = Object.entries(p.pipelines).map(([n, ph]) => {
    const s = p.snapshots[n];
    if (s?.child) return `${n}: initial load in ${s.child}`;
    return s ? `${n}: snapshot ${s.done}/${s.partitions} partitions, ${s.rowsCopied.toLocaleString('en')} rows` : `${n}: ${ph}`;
  });
  return [
    `cdc slot ${slot}: ${phases.join('; ')}`,
    `applied ${p.appliedLsn ?? '-'}, confirmed ${p.confirmedLsn ?? '-'}, current ${p.currentLsn ?? '-'}`,
    `lag ${p.lagBytes.toLocaleString('en')} bytes, ${p.lagSeconds.toFixed(1)} s; ${Math.round(p.rowsPerSecond).toLocaleString('en')} rows/s; ${p.rowsApplied.toLocaleString('en')} rows applied`,
    `slot retains ${p.retainedWalBytes.toLocaleString('en')} bytes of WAL`,
    ...p.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

export async function cdcStream(input: CdcStreamInput): Promise<CdcProgress> {
  const runSeconds = input.runSeconds ?? 30;
  const heartbeatTimeout = input.heartbeatTimeout ?? '30 seconds';
  const members = [...input.pipelines];
  const progress: CdcProgress = input.resume
    ? { ...input.resume, run: input.resume.run + 1, segments: 0 }
    : {
        pipelines: {}, snapshots: {}, slot: input.slot, publication: '', slotExists: false, slotActive: false, startLsn: null, appliedLsn: null, confirmedLsn: null,
        currentLsn: null, lagBytes: 0, lagSeconds: 0, retainedWalBytes: 0, rowsApplied: 0, batches: 0, warnings: [], rowsPerSecond: 0, segments: 0, run: 1,
        lastCommitTime: null, stopped: false,
      };
  const toJoin = members.filter((m) => progress.pipelines[m] !== 'streaming' && progress.pipelines[m] !== 'parked');
  const stops: CdcStopRequest[] = [];
  const show = () => setCurrentDetails(describe(progress, input.slot));
  setHandler(cdcProgressQuery, () => progress);
  /** The history length of the workflow task each join was signalled in (see startLoads). */
  const signalledAt = new Map<string, number>();
  setHandler(cdcJoinSignal, (pipeline) => {
    if (members.includes(pipeline)) return;
    members.push(pipeline);
    toJoin.push(pipeline);
    signalledAt.set(pipeline, workflowInfo().historyLength);
  });
  setHandler(cdcStopSignal, (req) => void stops.push(req));
  /** Figures sent by the running segment: only while one runs, so a late one cannot overwrite its result's. */
  let segmentRunning = false;
  setHandler(cdcFiguresSignal, (r) => {
    if (!segmentRunning) return;
    figures(r);
    show();
  });

  let failure: unknown;
  const loads = new Map<string, Promise<void>>();
  /** join -> the partitioned initial load -> streaming (the running reader picks the pipeline up). */
  const joinedOk = new Set<string>();
  async function snapshot(pipeline: string): Promise<void> {
    progress.pipelines[pipeline] = 'joining';
    const joined = await steps.cdcJoin({ pipeline });
    joinedOk.add(pipeline);
    progress.publication = joined.publication;
    if (joined.phase === 'snapshot') {
      progress.pipelines[pipeline] = 'snapshot';
      const runId = `cdc-load:${pipeline}:${joined.startLsn}`;
      if (patched('cdc-snapshot-child')) {
        // Its own history and continue-as-new: a table of any size copies in bounded histories (finding 10).
        const child = cdcSnapshotWorkflowId(workflowInfo().workflowId, pipeline);
        progress.snapshots[pipeline] = { partitions: 0, done: 0, rowsCopied: 0, child };
        show();
        await executeChild(cdcSnapshot, {
          workflowId: child,
          args: [{ pipeline, runId, heartbeatTimeout, chunksPerRun: input.snapshotChunksPerRun }],
        });
        delete progress.snapshots[pipeline];
        progress.pipelines[pipeline] = 'streaming';
        show();
        return;
      }
      const plan = await steps.cdcPlanLoad({ pipeline, runId });
      const open = plan.partitions!.filter((x) => !x.done);
      const s = (progress.snapshots[pipeline] = { partitions: plan.partitions!.length, done: plan.partitions!.length - open.length, rowsCopied: 0 });
      show();
      const { cdcLoadChunk } = streamingActivities(heartbeatTimeout);
      await inLanes(open, plan.parallelism ?? 1, async (part) => {
        for (let after = part.cursor; ; ) {
          const c = await cdcLoadChunk({ pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
          s.rowsCopied += c.rowsCopied;
          after = c.cursor;
          if (c.done) break;
        }
        s.done += 1;
        show();
      });
      await steps.cdcFinishLoad({ pipeline, runId });
      delete progress.snapshots[pipeline];
    }
    progress.pipelines[pipeline] = 'streaming';
    show();
  }

  /**
   * Right after a segment ended, only joins signalled in an earlier workflow task start: a signal and
   * the segment's completion in one task may run in either order (seen after a task timed out with a
   * dead worker: live one way, replayed the other, a nondeterminism error), so what the loop top
   * schedules must not depend on it. A join signalled in this task starts after the next segment.
   */
  const startLoads = (afterSegment: boolean): number => {
    const ordered = afterSegment && patched('cdc-join-signal-order');
    const later: string[] = [];
    for (let p = toJoin.shift(); p !== undefined; p = toJoin.shift()) {
      const name = p;
      if (ordered && (signalledAt.get(name) ?? -1) >= workflowInfo().historyLength) {
        later.push(name);
        continue;
      }
      loads.set(
        name,
        snapshot(name).then(
          () => void loads.delete(name),
          async (err) => {
            // A copy that cannot succeed (after the join answered) parks its pipeline instead of
            // failing the workflow: the slot's other pipelines keep streaming (docs/cdc.md, Parking).
            // A child load's failure wraps the activity's (cdc-snapshot-child).
            const failed = err instanceof ChildWorkflowFailure ? err.cause : err;
            const cause = failed instanceof ActivityFailure && failed.cause instanceof ApplicationFailure ? failed.cause : undefined;
            if (cause?.nonRetryable && joinedOk.has(name) && patched('cdc-park-failed-snapshot')) {
              await steps.cdcPark({ pipeline: name, type: cause.type ?? 'LakebaseUnknownError', reason: cause.message });
              progress.pipelines[name] = 'parked';
              delete progress.snapshots[name];
              loads.delete(name);
              show();
              return;
            }
            failure ??= err;
          },
        ).catch((err) => void (failure ??= err)),
      );
    }
    toJoin.push(...later);
    return later.length;
  };

  function figures(r: CdcStreamResult): void {
    const { pipeline: _p, phase: _ph, ...status } = r.status;
    Object.assign(progress, status, { rowsPerSecond: r.progress.rowsPerSecond, lastCommitTime: r.progress.lastCommitTime ?? progress.lastCommitTime });
  }

  let afterSegment = false;
  for (;;) {
    const deferred = startLoads(afterSegment);
    afterSegment = false;
    if (failure !== undefined) throw failure;
    // Stops: a pipeline leaves (its state goes; the slot too, when asked and it was the last).
    for (let req = stops.shift(); req; req = stops.shift()) {
      if (!members.includes(req.pipeline)) continue;
      await loads.get(req.pipeline)?.catch(() => undefined);
      const last = members.length === 1;
      const left = await steps.cdcLeave({ pipeline: req.pipeline, dropSlot: req.dropSlot && last });
      members.splice(members.indexOf(req.pipeline), 1);
      delete progress.pipelines[req.pipeline];
      if (left.slotDropped) progress.slotExists = false;
    }
    if (members.length === 0) {
      progress.stopped = true;
      show();
      return progress;
    }
    const streaming = members.filter((m) => progress.pipelines[m] === 'streaming');
    if (streaming.length === 0) {
      await condition(() => stops.length > 0 || toJoin.length > 0 || failure !== undefined || members.some((m) => progress.pipelines[m] === 'streaming'));
      continue;
    }
    // A segment waiting for a long source transaction's commit must not hit its start-to-close.
    const { cdcStream: readSlot } = cdcStreamActivities(runSeconds, heartbeatTimeout, patched('cdc-segment-long-transactions'));
    const scope = new CancellationScope();
    const segment = scope.run(() => readSlot({ pipeline: streaming[0]!, runSeconds, ...(input.figuresSeconds !== undefined && { figuresSeconds: input.figuresSeconds }) }));
    segmentRunning = true;
    // A join signalled while the segment runs ends it early (the reader flushes and stops in about a
    // heartbeat), so the join starts in seconds instead of at the segment's end (up to runSeconds).
    // Joins deferred just above do not: they were signalled in the task that started this segment,
    // and cancelling it there would loop within that task. Cancelling a segment whose completion is
    // in the same activation sends nothing, so either job order gives the same commands.
    const joinEnds = patched('cdc-join-ends-segment');
    const joining = () => joinEnds && toJoin.length > deferred;
    await Promise.race([segment.then(() => undefined, () => undefined), condition(() => stops.length > 0 || failure !== undefined || joining())]);
    const stopping = stops.length > 0;
    const cancelled = stopping || joining();
    if (cancelled || failure !== undefined) scope.cancel();
    try {
      figures(await segment);
    } catch (err) {
      // A stop cancels the segment; when its worker is dead the cancel never lands and the attempt
      // ends in a heartbeat timeout instead (the server retries no attempt whose cancel was asked).
      // Either way the segment is over and the targets' checkpoints hold what it applied, so the
      // stop (or the join that ended it) goes on (finding cdc-stop-after-worker-kill).
      if (!isCancellation(err) && !(cancelled && patched('cdc-stop-ends-failed-segment'))) throw err;
    } finally {
      segmentRunning = false;
    }
    progress.segments += 1;
    afterSegment = true;
    show();
    if ((progress.segments >= (input.segmentsPerRun ?? 100) || workflowInfo().continueAsNewSuggested) && loads.size === 0 && stops.length === 0 && toJoin.length === 0) {
      await continueAsNew<typeof cdcStream>({ ...input, pipelines: members, resume: progress });
    }
  }
}
