import { continueAsNew, defineQuery, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { NON_RETRYABLE } from '../failureTypes';
import { stepActivities, streamingActivities } from './activityCalls';
import { inLanes } from './lanes';

/**
 * The initial load of one cdc pipeline, a child of its slot's `cdcStream` (patch
 * cdc-snapshot-child): the plan's partitions copied in lanes, chunk by chunk, then the loaded table
 * put in place. Every chunk is an activity, so the load continues as new on its own (the plan,
 * called again, resumes after the committed cursors) and the stream's history stays the size of
 * its segments however many rows the table has.
 */

export interface CdcSnapshotInput {
  pipeline: string;
  /** The load's run in the pipeline's state (`cdc-load:<pipeline>:<start LSN>`): the same across continue-as-new. */
  runId: string;
  heartbeatTimeout: string;
  /** Continue as new after this many chunks (default: when Temporal suggests it). */
  chunksPerRun?: number;
  /** Set by continue-as-new. */
  resume?: CdcSnapshotProgress;
}

export interface CdcSnapshotProgress {
  pipeline: string;
  partitions: number;
  /** Partitions copied to their end. */
  done: number;
  rowsCopied: number;
  /** Chunks copied over every run. */
  chunks: number;
  /** The run of this load's continue-as-new chain, from 1. */
  run: number;
}

export const cdcSnapshotProgressQuery = defineQuery<CdcSnapshotProgress>('progress');

/** `<stream id>:snapshot:<pipeline>`: found by `cdc status` from the slot and pipeline alone. */
export const cdcSnapshotWorkflowId = (streamWorkflowId: string, pipeline: string) => `${streamWorkflowId}:snapshot:${pipeline}`;

const steps = stepActivities(NON_RETRYABLE);

const describe = (p: CdcSnapshotProgress) =>
  `cdc initial load of ${p.pipeline}: ${p.done}/${p.partitions} partitions, ${p.rowsCopied.toLocaleString('en')} rows in ${p.chunks.toLocaleString('en')} chunks (run ${p.run})`;

export async function cdcSnapshot(input: CdcSnapshotInput): Promise<CdcSnapshotProgress> {
  const { pipeline, runId } = input;
  const progress: CdcSnapshotProgress = input.resume
    ? { ...input.resume, run: input.resume.run + 1 }
    : { pipeline, partitions: 0, done: 0, rowsCopied: 0, chunks: 0, run: 1 };
  setHandler(cdcSnapshotProgressQuery, () => progress);
  const plan = await steps.cdcPlanLoad({ pipeline, runId });
  const partitions = plan.partitions ?? [];
  const open = partitions.filter((x) => !x.done);
  Object.assign(progress, { partitions: partitions.length, done: partitions.length - open.length });
  setCurrentDetails(describe(progress));
  const { cdcLoadChunk } = streamingActivities(input.heartbeatTimeout);
  let chunksThisRun = 0;
  // Continue-as-new is due: no new chunks; the ones in flight finish first.
  let pause = false;
  await inLanes(
    open,
    plan.parallelism ?? 1,
    async (part, lane) => {
      for (let after = part.cursor; !pause && !lane.stopped(); ) {
        const c = await cdcLoadChunk({ pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
        progress.rowsCopied += c.rowsCopied;
        progress.chunks += 1;
        after = c.cursor;
        chunksThisRun += 1;
        if (workflowInfo().continueAsNewSuggested || (input.chunksPerRun !== undefined && chunksThisRun >= input.chunksPerRun)) pause = true;
        if (c.done) {
          progress.done += 1;
          break;
        }
      }
      setCurrentDetails(describe(progress));
    },
    { stop: () => pause },
  );
  if (progress.done < progress.partitions) await continueAsNew<typeof cdcSnapshot>({ ...input, resume: progress });
  await steps.cdcFinishLoad({ pipeline, runId });
  setCurrentDetails(`${describe(progress)} — done`);
  return progress;
}
