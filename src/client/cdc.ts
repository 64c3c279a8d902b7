// Starting, watching and stopping the cdc stream of a pipeline's slot (one workflow per slot).
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import { slotNames } from '../sync/cdc/names';
import { cdcJoinSignal, cdcProgressQuery, cdcStopSignal, type CdcProgress, type CdcStreamInput } from '../workflows/cdcStream';

/** `cdc:<slot>`: the stream of one replication slot, whichever pipelines share it. */
export const cdcWorkflowId = (slot: string) => `cdc:${slot}`;

/** Starts the slot's stream, or joins the pipeline to the one running; returns at once. */
export async function startCdc(
  client: Client,
  opts: { config: Config; pipeline: string; taskQueue: string; stream?: Pick<CdcStreamInput, 'runSeconds' | 'heartbeatTimeout' | 'segmentsPerRun'> },
): Promise<{ workflowId: string; slot: string }> {
  const { slot } = slotNames(opts.config, opts.pipeline);
  const workflowId = cdcWorkflowId(slot);
  const p = opts.config.pipelines[opts.pipeline]!;
  await client.workflow.signalWithStart<(i: CdcStreamInput) => Promise<CdcProgress>, [string]>('cdcStream', {
    taskQueue: opts.taskQueue,
    workflowId,
    args: [{ slot, pipelines: [opts.pipeline], ...opts.stream }],
    signal: cdcJoinSignal,
    signalArgs: [opts.pipeline],
    staticSummary: `CDC stream of slot **${slot}**`,
    staticDetails: `Logical replication from ${p.source.profile}/${p.source.environment}: slot \`${slot}\`; pipelines join with \`cdc start\`, leave with \`cdc stop\`.`,
  });
  return { workflowId, slot };
}

/** The stream's figures (its progress query), or null when no stream of the slot is running. */
export async function cdcProgress(client: Client, config: Config, pipeline: string): Promise<{ slot: string; progress: CdcProgress | null }> {
  const { slot } = slotNames(config, pipeline);
  try {
    const handle = client.workflow.getHandle(cdcWorkflowId(slot));
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return { slot, progress: null };
    return { slot, progress: await handle.query(cdcProgressQuery) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { slot, progress: null };
    throw err;
  }
}

/** The pipeline leaves the stream (with dropSlot, the slot goes too when it was the last); waits for the stream to end when it was. */
export async function stopCdc(client: Client, opts: { config: Config; pipeline: string; dropSlot: boolean }): Promise<{ slot: string; ended: CdcProgress | null }> {
  const { slot } = slotNames(opts.config, opts.pipeline);
  const handle = client.workflow.getHandle<(i: CdcStreamInput) => Promise<CdcProgress>>(cdcWorkflowId(slot));
  await handle.signal(cdcStopSignal, { pipeline: opts.pipeline, dropSlot: opts.dropSlot });
  const progress = await handle.query(cdcProgressQuery).catch(() => null);
  const others = progress ? Object.keys(progress.pipelines).filter((p) => p !== opts.pipeline) : [];
  return { slot, ended: others.length === 0 ? await handle.result() : null };
}
