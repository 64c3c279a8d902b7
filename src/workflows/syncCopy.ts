import { continueAsNew, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { ChunkResult, SyncPlan } from '../activities/types';
import { NON_RETRYABLE_FAILURES } from '../failureTypes';
import { failureType, nonRetryableTypes, streamingActivities } from './activityCalls';
import { inLanes, type Lane } from './lanes';
import { plannedFingerprint, recordChunk, type DataSyncInput, type SyncProgress, type SyncRun } from './syncRun';

type Partition = NonNullable<SyncPlan['partitions']>[number];

/** Continue-as-new is due: Temporal suggests it, or the run copied its `chunksPerRun`. */
const continueDue = (input: DataSyncInput, chunksThisRun: number) =>
  workflowInfo().continueAsNewSuggested || (input.chunksPerRun !== undefined && chunksThisRun >= input.chunksPerRun);

/** Goes on in a new run with the progress so far (it resumes after the committed cursors). */
const continueRun = (run: SyncRun) => continueAsNew<(i: DataSyncInput) => Promise<SyncProgress>>({ ...run.input, auth: run.identity.auth, resume: run.progress });

/** One chunk; a conflict with the initial load (the target is not ours alone) says so instead of failing. */
async function copyChunk(run: SyncRun, initialLoad: boolean, after: Partition['cursor'], partition?: number): Promise<ChunkResult | 'conflict'> {
  const { pipeline, environment, runId } = run;
  const { syncChunk } = streamingActivities(run.heartbeatTimeout, nonRetryableTypes(run.wakeVisible));
  try {
    return await run.call(() => syncChunk({ pipeline, environment, runId, after, auth: run.identity.auth, initialLoad, ...(partition !== undefined && { partition }), ...plannedFingerprint(run.plan) }));
  } catch (err) {
    if (failureType(err) !== NON_RETRYABLE_FAILURES.initialLoadConflict) throw err;
    return 'conflict';
  }
}

/** Copy step, one slice after another in key order (runs from before partitions, and unpartitioned plans). */
export async function copyInOrder(run: SyncRun): Promise<void> {
  const { progress } = run;
  for (let chunksThisRun = 0; ; ) {
    const chunk = await copyChunk(run, progress.initialLoad, progress.cursor);
    if (chunk === 'conflict') {
      progress.initialLoad = false; // the target is not ours alone: merge from now on
      continue;
    }
    progress.cursor = chunk.cursor;
    recordChunk(run, chunk);
    if (chunk.done) return;
    chunksThisRun++;
    if (continueDue(run.input, chunksThisRun)) await continueRun(run);
  }
}

/** Copy step of a partitioned plan: up to `parallelism` slices at once; any worker polling the task queue may take each chunk. */
export async function copyPartitions(run: SyncRun, partitions: Partition[], parallelism: number): Promise<void> {
  const { progress } = run;
  const queue = partitions.filter((x) => !x.done);
  const counts = (progress.partitions = { total: partitions.length, done: partitions.length - queue.length, running: 0 });
  setCurrentDetails(run.describe());
  let chunksThisRun = 0;
  let pause = false; // continue-as-new is due: no new chunks; the ones in flight finish first

  const copyPartition = async (part: Partition, lane: Lane) => {
    let initialLoad = progress.initialLoad;
    while (!pause && !lane.stopped()) {
      const chunk = await copyChunk(run, initialLoad, part.cursor, part.partition);
      if (chunk === 'conflict') {
        initialLoad = false; // the target is not ours alone: this slice merges from now on
        continue;
      }
      part.cursor = chunk.cursor;
      recordChunk(run, chunk);
      if (chunk.done) {
        part.done = true;
        counts.done += 1;
        setCurrentDetails(run.describe());
        return;
      }
      if (continueDue(run.input, ++chunksThisRun)) pause = true;
    }
  };
  await inLanes(queue, parallelism, copyPartition, { stop: () => pause, onStart: () => (counts.running += 1), onEnd: () => (counts.running -= 1) });
  if (partitions.some((x) => !x.done)) await continueRun(run);
}
