import type { CredentialProvider } from '../auth/credentials';
import type { Config } from '../config/schema';
import { classifySqlError } from '../db/errors';
import type { PoolRegistry } from '../db/pools';
import type { Metrics } from '../metrics';
import type { CallContext, ConnectionBudget } from '../sync';
import { createCdcEngine, type CdcJoin, type CdcStatus, type StreamProgress } from '../sync/cdc';
import { activityContext } from './context';
import { runActivity } from './adapter';
import { CDC_FIGURES_SIGNAL, type ChunkResult, type FinishResult, type SyncChunkInput, type SyncPlan } from './types';

export interface CdcDeps {
  config: Config;
  pools: PoolRegistry;
  credentials: CredentialProvider;
  metrics?: Metrics;
  budget?: ConnectionBudget;
}

export interface CdcStreamInput {
  pipeline: string;
  /** The activity returns after this long (figures for the workflow); the next one goes on from the slot. */
  runSeconds: number;
  /** How often, at most, the figures go to the workflow while the activity runs (default 60; only when they changed). */
  figuresSeconds?: number;
}

export interface CdcStreamResult {
  progress: StreamProgress;
  status: CdcStatus;
}

/** How often, at most, a running segment sends its figures to its workflow. */
const FIGURES_SECONDS = 60;

/** Thin Temporal adapters over the CDC engine (src/sync/cdc): heartbeats, metrics, typed failures. */
export function createCdcActivities({ config, pools, credentials, metrics, budget }: CdcDeps) {
  const cdc = createCdcEngine({
    config,
    budget,
    log: (message, fields) => activityContext()?.log.info(message, fields),
    // The replication connection logs in like the pools: the same host lookup, token cache (or password) and SSL.
    replicationConfig: async (profile, environment) => {
      (await pools.connect(profile, environment)).release();
      const { host, port, database, user, password, ssl } = pools.get(profile, environment).options;
      return { host, port, database, user, password, ssl, application_name: 'lakebase-worker-cdc' };
    },
  });

  const callContext = (signal?: AbortSignal): CallContext => ({
    connect: (profile, environment, access) => pools.connect(profile, environment, undefined, access),
    signal: signal ?? activityContext()?.cancellationSignal,
  });

  const failing = <R>(statement: string, fn: () => Promise<R>): Promise<R> => runActivity({ statement }, fn);

  function gauges(s: CdcStatus): void {
    metrics?.cdcLagBytes.set({ slot: s.slot }, s.lagBytes);
    metrics?.cdcLagSeconds.set({ slot: s.slot }, s.lagSeconds);
    metrics?.cdcRetainedWalBytes.set({ slot: s.slot }, s.retainedWalBytes);
    if (s.walStatus) for (const w of ['reserved', 'extended', 'unreserved', 'lost'] as const) metrics?.cdcSlotWalStatus.set({ slot: s.slot, status: w }, s.walStatus === w ? 1 : 0);
    if (s.safeWalSize !== null && s.safeWalSize !== undefined) metrics?.cdcSlotSafeWalBytes.set({ slot: s.slot }, s.safeWalSize);
    metrics?.cdcPipelineParked.set({ pipeline: s.pipeline }, s.parked ? 1 : 0);
  }

  /** Every pipeline of the slot: whether it is parked (the stream's own status covers its first pipeline only). */
  async function memberGauges(pipeline: string, signal: AbortSignal): Promise<void> {
    for (const n of cdc.group(pipeline)) {
      if (n === pipeline) continue;
      const s = await cdc.status(callContext(signal), { pipeline: n }).catch(() => undefined);
      if (s) metrics?.cdcPipelineParked.set({ pipeline: n }, s.parked ? 1 : 0);
      if (s?.parked) activityContext()?.log.warn('cdc pipeline parked', { pipeline: n, type: s.parked.type, reason: s.parked.reason });
    }
  }

  const cdcJoin = (input: { pipeline: string }): Promise<CdcJoin> => failing(`cdcJoin(${input.pipeline})`, () => cdc.join(callContext(), input));

  const cdcPlanLoad = (input: { pipeline: string; runId: string }): Promise<SyncPlan> =>
    failing(`cdcPlanLoad(${input.pipeline})`, async () => {
      // Here, not in the join: the join answers at once (cdc start says "copying"), the wait shows as the plan's.
      await cdc.untilJoinedTransactionsEnd(callContext(), input);
      return cdc.load.plan(callContext(), { ...input, partitioned: true });
    });

  async function cdcLoadChunk(input: SyncChunkInput): Promise<ChunkResult> {
    const act = activityContext();
    const ctx = { ...callContext(), onProgress: ({ rows, bytes }: { rows: number; bytes: number }) => act?.heartbeat({ rows, bytes, partition: input.partition }) };
    const label = {
      statement: `cdcLoadChunk(${input.pipeline}) into ${config.pipelines[input.pipeline]?.target.table ?? '?'}`,
      cancelled: { message: `cdcLoadChunk(${input.pipeline}) cancelled; the chunk was rolled back`, when: 'abort' as const },
    };
    return runActivity(label, async () => {
      const result = await cdc.load.chunk(ctx, input);
      metrics?.rowsCopied.inc({ pipeline: input.pipeline }, result.rowsCopied);
      metrics?.rowsWritten.inc({ pipeline: input.pipeline }, result.rowsWritten);
      return result;
    });
  }

  /** Ends the initial load (the loaded table takes the target's place) and turns the pipeline to streaming. */
  const cdcFinishLoad = (input: { pipeline: string; runId: string }): Promise<FinishResult> =>
    failing(`cdcFinishLoad(${input.pipeline})`, async () => {
      const result = await cdc.load.finish(callContext(), input);
      // Not a fresh table swapped in: the copy merged into rows already there (a checkpoint that could not be kept), so rows deleted meanwhile go first.
      if (result.swap?.method !== 'rename' && result.swap?.method !== 'truncate-insert') await cdc.pruneAfterCopy(callContext(), input);
      await cdc.finishSnapshot(callContext(), input);
      return result;
    });

  const cdcStatus = (input: { pipeline: string }): Promise<CdcStatus> =>
    failing(`cdcStatus(${input.pipeline})`, async () => {
      const s = await cdc.status(callContext(), input);
      gauges(s);
      return s;
    });

  /** A pipeline whose copy cannot succeed: parked (its state row says why), the slot streams on for the others. */
  const cdcPark = (input: { pipeline: string; type: string; reason: string }) => failing(`cdcPark(${input.pipeline})`, () => cdc.park(callContext(), input));

  const cdcLeave = (input: { pipeline: string; dropSlot: boolean }) => failing(`cdcLeave(${input.pipeline})`, () => cdc.leave(callContext(), input));

  /**
   * Reads and applies the slot's changes for `runSeconds`, heartbeating the figures; a worker that
   * dies mid-way has the next attempt resume from the targets' checkpoints. Cancelled (the stream
   * stopped): the pending batch is applied first, then the activity ends as cancelled.
   */
  async function cdcStream(input: CdcStreamInput): Promise<CdcStreamResult> {
    const act = activityContext();
    const stop = new AbortController();
    const cancelled = act?.cancellationSignal;
    cancelled?.addEventListener('abort', () => stop.abort(), { once: true });
    const timer = setTimeout(() => stop.abort(), input.runSeconds * 1000);
    let progress: StreamProgress | undefined;
    let counted = 0;
    let status: CdcStatus | undefined;
    const every = Math.min(5_000, Math.max(200, (act?.info.heartbeatTimeoutMs || 30_000) / 3));
    const figuresEvery = (input.figuresSeconds ?? FIGURES_SECONDS) * 1000;
    let figuresSent = { at: Date.now(), what: '' };
    const beat = setInterval(() => {
      void cdc.status(callContext(stop.signal), input).then(
        (s) => {
          status = s;
          gauges(s);
          if (s.warnings.length) act?.log.warn('cdc slot needs attention', { slot: s.slot, warnings: s.warnings });
          // A segment runs for an hour: its figures reach the workflow (the UI's current details, the
          // progress query) on the way, when something shown changed, so an idle stream adds no events.
          const what = JSON.stringify([s.appliedLsn, s.rowsApplied, s.warnings, s.walStatus]);
          const run = act?.info.workflowExecution;
          if (act && run && progress && what !== figuresSent.what && Date.now() - figuresSent.at >= figuresEvery) {
            figuresSent = { at: Date.now(), what };
            void act.client.workflow
              .getHandle(run.workflowId, run.runId)
              .signal<[CdcStreamResult]>(CDC_FIGURES_SIGNAL, { progress, status: s })
              .catch((err: unknown) => act.log.debug('cdc figures not sent to the workflow', { error: String(err) }));
          }
        },
        () => undefined, // figures only: the stream itself reports real failures
      );
      if (metrics) void memberGauges(input.pipeline, stop.signal);
      act?.heartbeat({ ...progress, lagBytes: status?.lagBytes, lagSeconds: status?.lagSeconds, retainedWalBytes: status?.retainedWalBytes });
    }, every);
    const p = cdc.names(input.pipeline);
    const label = {
      statement: `cdcStream(${input.pipeline}) on slot ${p.slot}`,
      cancelled: { message: `cdcStream(${input.pipeline}) stopped; what it applied is confirmed to the source`, when: 'signal' as const },
    };
    return runActivity(label, async () => {
      try {
        const result = await cdc.stream(callContext(stop.signal), {
          pipeline: input.pipeline,
          onProgress: (x) => {
            progress = x;
            metrics?.cdcRowsApplied.inc({ slot: p.slot }, x.rowsApplied - counted);
            counted = x.rowsApplied;
          },
        });
        metrics?.cdcRowsApplied.inc({ slot: p.slot }, result.rowsApplied - counted);
        // Stopped: the pending batch was applied; the workflow sees the activity cancelled (label.cancelled).
        if (cancelled?.aborted) throw new Error('stopped');
        const s = await cdc.status(callContext(new AbortController().signal), input);
        gauges(s);
        return { progress: result, status: s };
      } catch (err) {
        // A refused login drops the cached token, so the retry logs in with a fresh one (tokens are checked only at login).
        if (classifySqlError(err).kind === 'auth') {
          const q = config.pipelines[input.pipeline];
          if (q) credentials.invalidate(q.source.profile, q.source.environment);
        }
        throw err;
      } finally {
        clearTimeout(timer);
        clearInterval(beat);
      }
    });
  }

  return { cdcJoin, cdcPlanLoad, cdcLoadChunk, cdcFinishLoad, cdcStatus, cdcLeave, cdcPark, cdcStream };
}
