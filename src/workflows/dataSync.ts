import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { LakebasePipeline, LakebaseRowsWritten } from './searchAttributes';
import type { Activities } from '../activities';
import type { ChunkResult, CursorValue, DryRunReport, JobAuth, LakebaseTokenInfo, ResyncPlan, SwapReport, SyncPlan, TargetShapeReport, VerifyReport } from '../activities/types';
import { NON_RETRYABLE, NON_RETRYABLE_FAILURES, RETRYABLE_FAILURES } from './failureTypes';
import { bucketActivities, inLanes, runVerify, type VerifyProgress } from './verify';

export { NON_RETRYABLE };

/** Runs started from here on split the table into partitions that sync in parallel (sync engine v2). */
export const PARTITIONED_SYNC_PATCH = 'sync-engine-v2-partitions';
/** Runs of pipelines with `deletes` look for target rows whose key left the source before finishing. */
export const DELETES_PATCH = 'sync-deletes';
/** Runs of pipelines with `verify` compare source and target after finishing. */
export const VERIFY_PATCH = 'sync-verify';
/**
 * Runs started from here on let the plan choose compare-then-copy for a populated target without
 * a cursor (SyncPlan.resync): buckets compared and written instead of chunks and delete detection.
 */
export const RESYNC_PATCH = 'sync-compare-then-copy';

/**
 * Runs started from here on wait for a waking scale-to-zero compute in the workflow rather than in
 * the server's activity retry, so the UI's current details can say so (LakebaseComputeWaking).
 */
export const COMPUTE_WAKING_PATCH = 'sync-compute-waking-in-current-details';
/** Workflow-level tries of a step that met a still-waking compute (each try already waited computeWakeTimeoutMs). */
const COMPUTE_WAKE_TRIES = 5;

const nonRetryable = (wakeVisible: boolean) => (wakeVisible ? [...NON_RETRYABLE, RETRYABLE_FAILURES.computeWaking] : NON_RETRYABLE);

const stepActivities = (wakeVisible: boolean) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '10 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: nonRetryable(wakeVisible) },
  });

// A chunk streams up to batchRows rows; it heartbeats while it does, so a dead worker is noticed quickly.
const chunkActivities = (heartbeatTimeout: string, wakeVisible: boolean) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: nonRetryable(wakeVisible) },
  });

export interface SyncProgress {
  pipeline: string;
  mode: SyncPlan['mode'] | 'planning';
  /** Order values of the last committed row; the sync resumes after it. */
  cursor: CursorValue[] | null;
  chunks: number;
  rowsCopied: number;
  rowsWritten: number;
  /** Planner's estimate of the total rows this run copies. */
  estimatedRows: number;
  rowsPerSecond: number;
  /** Seconds left at the current rate, when it can be told. */
  etaSeconds: number | null;
  /** Runs of this workflow so far (continue-as-new keeps the history small). */
  run: number;
  /** True when this run picked up a previous run's uncommitted remainder. */
  resumed: boolean;
  /** The target was empty: chunks go straight in (see SyncPlan.initialLoad). */
  initialLoad: boolean;
  done: boolean;
  /** True while an on-behalf-of sync waits for the user to log in again. */
  waitingForRelogin: boolean;
  /** Partitioned runs: slices of the table, finished and in flight. */
  partitions?: { total: number; done: number; running: number };
  /** Copied rows that were identical in the target (merges), so not written. */
  rowsUnchanged?: number;
  /** Full refresh (or an upsert's first load): how the loaded table replaced the target. */
  swap?: SwapReport;
  /** What the plan did to the target's shape: created it, or found source columns changed (schemaChanges). */
  targetShape?: TargetShapeReport;
  /** A dry run (DataSyncInput.dryRun): what a run would do; nothing was changed. */
  dryRun?: DryRunReport;
  /** deletes: hard/soft — buckets of the key space compared after the chunks, and target rows deleted (or marked). */
  deletes?: { buckets: number; done: number; rowsDeleted: number };
  /**
   * A re-sync of a populated target without a cursor: how (compare-then-copy, or the plain merge of
   * every row) and why, with the figures; compare: its buckets, and the rows copied, written and deleted.
   */
  resync?: Pick<ResyncPlan, 'method' | 'reason' | 'probe'> & { buckets: number; done: number; rowsCopied: number; rowsWritten: number; rowsDeleted: number };
  /** verify: the compare after the run; `report` once it passed. */
  verify?: VerifyProgress & { report?: VerifyReport };
  /** While a step waits for a scale-to-zero compute to wake: which try, and what the login met. */
  computeWaking?: { tries: number; message: string };
  /** Non-secret metadata of the tokens this sync logs in with. */
  tokens: LakebaseTokenInfo[];
  startedAt: number;
}

export interface DataSyncInput {
  pipeline: string;
  /** Run against this environment of the pipeline's profiles (e.g. staging) instead of the configured ones. */
  environment?: string;
  /** For login-idp profiles: the sealed IdP token of the user the sync runs for. */
  auth?: JobAuth;
  /** How long to wait for a fresh IdP token after TOKEN_EXPIRED before failing. Default 1 hour. */
  reloginTimeout?: string;
  /** Continue as new after this many chunks in one run (default: when Temporal suggests it). */
  chunksPerRun?: number;
  /** How soon a chunk whose worker died is retried elsewhere (its heartbeat timeout). Default 1 minute. */
  heartbeatTimeout?: string;
  /** Only plan: validate the pipeline and describe what a run would do (progress.dryRun), changing nothing. */
  dryRun?: boolean;
  /** Set by continue-as-new; users leave it out. */
  resume?: SyncProgress;
}

export const progressQuery = defineQuery<SyncProgress>('progress');
/** Delivers a fresh sealed IdP token to a sync waiting for re-login. */
export const idpTokenSignal = defineSignal<[string]>('idpToken');
/** Same as the signal, but the caller learns whether the sync accepted it. */
export const reloginUpdate = defineUpdate<{ accepted: boolean }, [string]>('relogin');

function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;
}

function formatEta(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 90) return `, ETA ${Math.round(seconds)} s`;
  return `, ETA ${Math.round(seconds / 60)} min`;
}

export async function dataSync(input: DataSyncInput): Promise<SyncProgress> {
  const { pipeline, environment } = input;
  const runId = workflowInfo().workflowId; // stable across continue-as-new: the owner of the sync state
  const progress: SyncProgress = input.resume
    ? { ...input.resume, run: input.resume.run + 1, waitingForRelogin: false }
    : {
        pipeline, mode: 'planning', cursor: null, chunks: 0, rowsCopied: 0, rowsWritten: 0, estimatedRows: 0, rowsPerSecond: 0,
        etaSeconds: null, run: 1, resumed: false, initialLoad: false, done: false, waitingForRelogin: false, tokens: [], startedAt: Date.now(),
      };
  let auth = input.auth;
  let freshToken: string | undefined;
  setHandler(progressQuery, () => progress);
  setHandler(idpTokenSignal, (sealed) => void (freshToken = sealed));
  setHandler(
    reloginUpdate,
    (sealed) => {
      freshToken = sealed;
      return { accepted: true };
    },
    {
      validator: (sealed) => {
        if (!sealed.startsWith('lbsealed:')) throw new Error('expected a sealed IdP token (use `lakebase-worker sync relogin`)');
      },
    },
  );

  const describe = () => {
    const total = Math.max(progress.estimatedRows, progress.rowsCopied);
    const chunkOf = progress.mode === 'planning' ? '' : ` of ~${Math.max(1, Math.ceil(total / Math.max(1, plan?.chunkRows ?? 1)))}`;
    const parts = progress.partitions ? `, partitions ${progress.partitions.done}/${progress.partitions.total} done (${progress.partitions.running} running)` : '';
    const shape = progress.targetShape;
    const shapeNote = shape?.created ? `, created target ${plan?.target.table ?? ''}` : shape?.changes?.length ? `, schema changes: ${shape.changes.join('; ')}` : '';
    const d = progress.deletes;
    const deletes = d ? `, deletes: bucket ${d.done}/${d.buckets}, ${d.rowsDeleted.toLocaleString('en')} removed` : '';
    const v = progress.verify;
    const verify = v ? `, verify (${v.mode}): bucket ${v.bucketsDone}/${v.buckets}, ${v.mismatches} difference(s)` : '';
    const r = progress.resync;
    const resync = !r
      ? ''
      : r.method === 'compare'
        ? `, compare-then-copy: bucket ${r.done}/${r.buckets}, ${r.rowsWritten.toLocaleString('en')} written, ${r.rowsDeleted.toLocaleString('en')} removed`
        : ', re-sync by merging every row';
    return (
      `${pipeline} (${progress.mode}${shapeNote}): chunk ${progress.chunks}${chunkOf}${parts}, ${progress.rowsCopied.toLocaleString('en')} rows copied, ` +
      `${progress.rowsWritten.toLocaleString('en')} written, ${Math.round(progress.rowsPerSecond).toLocaleString('en')} rows/s` +
      `${formatEta(progress.etaSeconds)}${resync}${deletes}${verify}${progress.done ? ' — done' : ''}${r && !progress.done ? `\n\n${r.reason}` : ''}`
    );
  };

  // Bumped when a fresh IdP token replaces `auth`: partitions that failed with the old one retry
  // with the new one instead of each waiting for a token of their own.
  let authGeneration = 0;

  const wakeVisible = patched(COMPUTE_WAKING_PATCH);
  const { planSync, finishSync, planDeletes, acquireLakebaseToken } = stepActivities(wakeVisible);

  /**
   * Runs a step; a TOKEN_EXPIRED that only a person can fix pauses the sync until they log in again,
   * and a compute still waking from scale-to-zero is waited for (a login failed, so nothing ran).
   */
  async function withRelogin<T>(step: () => Promise<T>): Promise<T> {
    for (let wakeTries = 1; ; ) {
      const generation = authGeneration;
      try {
        return await step();
      } catch (err) {
        if (wakeVisible && failureType(err) === RETRYABLE_FAILURES.computeWaking && wakeTries < COMPUTE_WAKE_TRIES) {
          const message = err instanceof ActivityFailure ? (err.cause?.message ?? '') : '';
          progress.computeWaking = { tries: wakeTries, message };
          setCurrentDetails(`Waiting for the compute to wake (${RETRYABLE_FAILURES.computeWaking}, try ${wakeTries} of ${COMPUTE_WAKE_TRIES}) — ${describe()}\n\n${message}`);
          await sleep(Math.min(5_000 * 2 ** (wakeTries - 1), 60_000));
          wakeTries++;
          progress.computeWaking = undefined;
          setCurrentDetails(describe());
          continue;
        }
        if (failureType(err) !== RETRYABLE_FAILURES.tokenExpired) throw err;
        if (authGeneration !== generation) continue;
        progress.waitingForRelogin = true;
        setCurrentDetails(`Paused, waiting for re-login: the IdP token expired (TOKEN_EXPIRED). ${describe()}`);
        const arrived = await condition(() => freshToken !== undefined || authGeneration !== generation, input.reloginTimeout ?? '1 hour');
        if (authGeneration !== generation) continue;
        progress.waitingForRelogin = false;
        if (!arrived) {
          throw ApplicationFailure.nonRetryable(
            `no fresh IdP token arrived within ${input.reloginTimeout ?? '1 hour'} after TOKEN_EXPIRED; start the sync again after logging in`,
            RETRYABLE_FAILURES.tokenExpired,
          );
        }
        auth = { idpToken: freshToken! };
        freshToken = undefined;
        authGeneration++;
        setCurrentDetails(describe());
      }
    }
  }

  /** Counts a chunk's rows into the progress, the UI's current details and search attributes. */
  function record(chunk: ChunkResult) {
    if (chunk.rowsCopied > 0 || chunk.alreadyCommitted) progress.chunks += 1;
    progress.rowsCopied += chunk.rowsCopied;
    progress.rowsWritten += chunk.rowsWritten;
    if (chunk.rowsUnchanged !== undefined) progress.rowsUnchanged = (progress.rowsUnchanged ?? 0) + chunk.rowsUnchanged;
    const elapsed = (Date.now() - progress.startedAt) / 1000;
    progress.rowsPerSecond = elapsed > 0 ? progress.rowsCopied / elapsed : 0;
    const left = Math.max(0, progress.estimatedRows - progress.rowsCopied);
    progress.etaSeconds = progress.rowsPerSecond > 0 && !chunk.done ? left / progress.rowsPerSecond : null;
    setCurrentDetails(describe());
    // Only when the start registered our search attributes (an unknown one would fail the workflow task).
    if (workflowInfo().typedSearchAttributes.get(LakebasePipeline) !== undefined)
      upsertSearchAttributes([{ key: LakebaseRowsWritten, value: progress.rowsWritten }]);
  }

  let plan: SyncPlan | undefined;
  const partitioned = patched(PARTITIONED_SYNC_PATCH);
  const compare = partitioned && !input.dryRun && patched(RESYNC_PATCH);
  plan = await withRelogin(() =>
    planSync({
      pipeline, environment, runId, auth, continuing: input.resume !== undefined,
      ...(partitioned && { partitioned: true }), ...(input.dryRun && { dryRun: true }), ...(compare && { compare: true }),
    }),
  );
  if (plan.resync && !progress.resync) {
    const { method, reason, probe, buckets } = plan.resync;
    progress.resync = { method, reason, probe, buckets: buckets.length, done: buckets.filter((b) => b.done).length, rowsCopied: 0, rowsWritten: 0, rowsDeleted: 0 };
  }
  progress.mode = plan.mode;
  if (plan.targetShape && !input.resume) progress.targetShape = plan.targetShape;
  if (input.dryRun) {
    // Set only by `sync start --dry-run`: the plan changed nothing, and the run ends here.
    progress.dryRun = plan.dryRun;
    progress.estimatedRows = plan.estimatedRows;
    progress.done = true;
    setCurrentDetails(`Dry run of ${pipeline}, nothing changed:\n${(plan.dryRun?.actions ?? []).map((a) => `- ${a}`).join('\n')}`);
    return progress;
  }
  if (!input.resume) {
    progress.cursor = plan.startCursor;
    progress.resumed = plan.resumed;
    progress.estimatedRows = plan.estimatedRows;
    progress.initialLoad = plan.initialLoad;
  }

  // Warm the worker's token cache once; chunk activities then log in without token requests.
  const sides = [plan.source, plan.target].filter(
    (s, i, all) => all.findIndex((o) => o.profile === s.profile && o.environment === s.environment) === i,
  );
  progress.tokens = await withRelogin(() =>
    Promise.all(sides.map((s) => acquireLakebaseToken({ profile: s.profile, environment: s.environment, auth }))),
  );
  setCurrentDetails(describe());

  const { syncChunk } = chunkActivities(input.heartbeatTimeout ?? '1 minute', wakeVisible);
  const continueNow = (chunksThisRun: number) =>
    workflowInfo().continueAsNewSuggested || (input.chunksPerRun !== undefined && chunksThisRun >= input.chunksPerRun);

  if (partitioned && plan.partitions) {
    const partitions = plan.partitions;
    const queue = partitions.filter((x) => !x.done);
    progress.partitions = { total: partitions.length, done: partitions.length - queue.length, running: 0 };
    setCurrentDetails(describe());
    let chunksThisRun = 0;
    let pause = false; // continue-as-new is due: no new chunks; the ones in flight finish first
    let failure: unknown;

    const runPartition = async (part: (typeof partitions)[number]) => {
      let initialLoad = progress.initialLoad;
      while (!pause && failure === undefined) {
        let chunk: ChunkResult;
        try {
          chunk = await withRelogin(() =>
            syncChunk({ pipeline, environment, runId, after: part.cursor, auth, initialLoad, partition: part.partition }),
          );
        } catch (err) {
          if (failureType(err) !== NON_RETRYABLE_FAILURES.initialLoadConflict) throw err;
          initialLoad = false; // the target is not ours alone: this slice merges from now on
          continue;
        }
        part.cursor = chunk.cursor;
        record(chunk);
        if (chunk.done) {
          part.done = true;
          progress.partitions!.done += 1;
          setCurrentDetails(describe());
          return;
        }
        if (continueNow(++chunksThisRun)) pause = true;
      }
    };

    // Up to `parallelism` slices at once; any worker polling the task queue may take each chunk.
    const lanes = Array.from({ length: Math.min(Math.max(1, plan.parallelism ?? 1), queue.length) }, async () => {
      for (let part = queue.shift(); part && !pause && failure === undefined; part = queue.shift()) {
        progress.partitions!.running += 1;
        try {
          await runPartition(part);
        } catch (err) {
          failure ??= err;
        } finally {
          progress.partitions!.running -= 1;
        }
      }
    });
    await Promise.all(lanes);
    if (failure !== undefined) throw failure;
    if (partitions.some((x) => !x.done)) await continueAsNew<typeof dataSync>({ ...input, auth, resume: progress });
  } else {
    let chunksThisRun = 0;
    for (;;) {
      let chunk;
      try {
        chunk = await withRelogin(() => syncChunk({ pipeline, environment, runId, after: progress.cursor, auth, initialLoad: progress.initialLoad }));
      } catch (err) {
        if (failureType(err) !== NON_RETRYABLE_FAILURES.initialLoadConflict) throw err;
        progress.initialLoad = false; // the target is not ours alone: merge from now on
        continue;
      }
      progress.cursor = chunk.cursor;
      record(chunk);
      if (chunk.done) break;
      chunksThisRun++;
      if (continueNow(chunksThisRun)) await continueAsNew<typeof dataSync>({ ...input, auth, resume: progress });
    }
  }
  const heartbeatTimeout = input.heartbeatTimeout ?? '1 minute';
  const resync = plan.resync?.method === 'compare' ? plan.resync : undefined;
  if (resync) {
    // Compare-then-copy: each bucket compares, copies and merges what differs, and deletes (deletes:
    // hard) in one transaction with its done flag; the plan made no partitions, so no chunk ran.
    const r = progress.resync!;
    const { resyncBucket } = bucketActivities(heartbeatTimeout, nonRetryable(wakeVisible));
    setCurrentDetails(describe());
    await inLanes(
      resync.buckets.filter((b) => !b.done),
      plan.parallelism ?? 1,
      async (b) => {
        const done = await withRelogin(() =>
          resyncBucket({ pipeline, environment, runId, auth, bucket: b.bucket, leafRows: resync.leafRows, digests: resync.digests, groupRows: resync.groupRows }),
        );
        r.done += 1;
        r.rowsCopied += done.rowsCopied;
        r.rowsWritten += done.rowsWritten;
        r.rowsDeleted += done.rowsDeleted;
        progress.rowsCopied += done.rowsCopied;
        progress.rowsWritten += done.rowsWritten + done.rowsDeleted;
        setCurrentDetails(describe());
      },
    );
  }
  // An upsert's first load puts exactly the source's rows in place: nothing to delete; a compare-then-copy re-sync deleted already.
  if (!resync && plan.deletes && plan.deletes !== 'ignore' && !plan.initialLoad && patched(DELETES_PATCH)) {
    const found = await withRelogin(() => planDeletes({ pipeline, environment, runId, auth }));
    const deletes = (progress.deletes = {
      buckets: found.buckets.length,
      done: found.buckets.filter((b) => b.done).length,
      rowsDeleted: found.buckets.reduce((n, b) => n + b.rowsDeleted, 0),
    });
    setCurrentDetails(describe());
    const { deleteBucket } = bucketActivities(heartbeatTimeout, nonRetryable(wakeVisible));
    await inLanes(
      found.buckets.filter((b) => !b.done),
      plan.parallelism ?? 1,
      async (b) => {
        const r = await withRelogin(() => deleteBucket({ pipeline, environment, runId, auth, bucket: b.bucket, leafRows: found.leafRows }));
        deletes.done += 1;
        deletes.rowsDeleted += r.rowsDeleted;
        progress.rowsWritten += r.rowsDeleted;
        setCurrentDetails(describe());
      },
    );
  }
  const finished = await withRelogin(() => finishSync({ pipeline, environment, runId, auth }));
  if (finished.swap) progress.swap = finished.swap;
  if (partitioned && finished.cursor !== undefined) progress.cursor = finished.cursor;
  if (plan.verify && plan.verify !== 'none' && patched(VERIFY_PATCH)) {
    setCurrentDetails(describe());
    const report = await runVerify({
      pipeline,
      environment,
      auth,
      mode: plan.verify,
      heartbeatTimeout,
      nonRetryable: nonRetryable(wakeVisible),
      call: withRelogin,
      onProgress: (v) => {
        progress.verify = { ...v };
        setCurrentDetails(describe());
      },
    });
    progress.verify = { ...progress.verify!, report };
  }
  progress.done = true;
  progress.etaSeconds = 0;
  setCurrentDetails(describe());
  return progress;
}
