// The one state a dataSync run's steps share (plan → copy → deletes → finish → verify): its input,
// progress, identity, and the wrapper every activity call goes through.
import { defineQuery, patched, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ChunkResult, CursorValue, DryRunReport, JobAuth, LakebaseTokenInfo, ResyncPlan, SwapReport, SyncPlan, TargetShapeReport, VerifyReport } from '../activities/types';
import { acceptRelogins, retryAfterReloginOrWake, type RunIdentity } from './activityCalls';
import { LakebasePipeline, LakebaseRowsWritten } from './searchAttributes';
import type { VerifyProgress } from './verify';
import { count } from '../humanize';

/**
 * Runs started from here on wait for a waking scale-to-zero compute in the workflow rather than in
 * the server's activity retry, so the UI's current details can say so (LakebaseComputeWaking).
 */
export const COMPUTE_WAKING_PATCH = 'sync-compute-waking-in-current-details';

/**
 * Runs started from here on keep LakebaseRowsWritten equal to progress.rowsWritten in every step
 * (compare-then-copy buckets and delete buckets too, not only chunks), so `list`, `status` and the
 * UI show the figure the progress line shows.
 */
export const FIGURES_PATCH = 'sync-figures-in-search-attributes';

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
  /** Of the pipeline's config when the first run of this sync planned (SyncPlan.fingerprint); continued runs must match it. */
  fingerprint?: string;
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

export interface SyncRun {
  input: DataSyncInput;
  pipeline: string;
  environment?: string;
  /** The workflow id: stable across continue-as-new, the owner of the sync state. */
  runId: string;
  heartbeatTimeout: string;
  progress: SyncProgress;
  /** `identity.auth` is read at each call: a re-login replaces it. */
  identity: RunIdentity;
  wakeVisible: boolean;
  /** FIGURES_PATCH: every step that writes updates LakebaseRowsWritten. */
  figures: boolean;
  /** Set by the plan step. */
  plan?: SyncPlan;
  /** Every activity call goes through this: re-login pauses and waking computes are waited for. */
  call: <T>(step: () => Promise<T>) => Promise<T>;
  describe: () => string;
}

/** The run state of a starting (or continued) sync, with its query, signal and update handlers. */
export function startSyncRun(input: DataSyncInput): SyncRun {
  const progress: SyncProgress = input.resume
    ? { ...input.resume, run: input.resume.run + 1, waitingForRelogin: false }
    : {
        pipeline: input.pipeline, mode: 'planning', cursor: null, chunks: 0, rowsCopied: 0, rowsWritten: 0, estimatedRows: 0, rowsPerSecond: 0,
        etaSeconds: null, run: 1, resumed: false, initialLoad: false, done: false, waitingForRelogin: false, tokens: [], startedAt: Date.now(),
      };
  const identity: RunIdentity = { auth: input.auth, generation: 0 };
  setHandler(progressQuery, () => progress);
  acceptRelogins(identity);
  const run: SyncRun = {
    input,
    pipeline: input.pipeline,
    environment: input.environment,
    runId: workflowInfo().workflowId,
    heartbeatTimeout: input.heartbeatTimeout ?? '1 minute',
    progress,
    identity,
    wakeVisible: patched(COMPUTE_WAKING_PATCH),
    figures: patched(FIGURES_PATCH),
    call: (step) => step(),
    describe: () => describeSync(run),
  };
  run.call = retryAfterReloginOrWake({ identity, wakeVisible: run.wakeVisible, reloginTimeout: input.reloginTimeout, status: progress, describe: run.describe });
  return run;
}

function formatEta(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 90) return `, ETA ${Math.round(seconds)} s`;
  return `, ETA ${Math.round(seconds / 60)} min`;
}

/** The UI's current details of a sync: where it is and how fast it goes. */
export function describeSync({ pipeline, progress, plan }: SyncRun): string {
  const total = Math.max(progress.estimatedRows, progress.rowsCopied);
  const chunkOf = progress.mode === 'planning' ? '' : ` of ~${Math.max(1, Math.ceil(total / Math.max(1, plan?.chunkRows ?? 1)))}`;
  const parts = progress.partitions ? `, partitions ${progress.partitions.done}/${progress.partitions.total} done (${progress.partitions.running} running)` : '';
  const shape = progress.targetShape;
  const shapeNote = shape?.created ? `, created target ${plan?.target.table ?? ''}` : shape?.changes?.length ? `, schema changes: ${shape.changes.join('; ')}` : '';
  const d = progress.deletes;
  const deletes = d ? `, deletes: bucket ${d.done}/${d.buckets}, ${d.rowsDeleted.toLocaleString('en')} removed` : '';
  const v = progress.verify;
  const verify = v ? `, verify (${v.mode}): bucket ${v.bucketsDone}/${v.buckets}, ${count(v.mismatches, 'difference')}` : '';
  const r = progress.resync;
  const resync = !r
    ? ''
    : r.method === 'compare'
      ? `, compare-then-copy: bucket ${r.done}/${r.buckets}, ${r.rowsWritten.toLocaleString('en')} written, ${r.rowsDeleted.toLocaleString('en')} removed`
      : ', re-sync by merging every row';
  return (
    `${pipeline} (${progress.mode}${shapeNote}): ${r?.method === 'compare' ? `${count(r.done, 'bucket')} of ${r.buckets} compared` : `chunk ${progress.chunks}${chunkOf}`}${parts}, ${count(progress.rowsCopied, 'row')} read, ` +
    `${progress.rowsWritten.toLocaleString('en')} written, ${Math.round(progress.rowsPerSecond).toLocaleString('en')} rows/s` +
    `${formatEta(progress.etaSeconds)}${resync}${deletes}${verify}${progress.done ? ' — done' : ''}${r && !progress.done ? `\n\n${r.reason}` : ''}`
  );
}

/** Counts a chunk's rows into the progress, the UI's current details and search attributes. */
export function recordChunk(run: SyncRun, chunk: ChunkResult): void {
  const { progress } = run;
  if (chunk.rowsCopied > 0 || chunk.alreadyCommitted) progress.chunks += 1;
  progress.rowsCopied += chunk.rowsCopied;
  progress.rowsWritten += chunk.rowsWritten;
  if (chunk.rowsUnchanged !== undefined) progress.rowsUnchanged = (progress.rowsUnchanged ?? 0) + chunk.rowsUnchanged;
  const elapsed = (Date.now() - progress.startedAt) / 1000;
  progress.rowsPerSecond = elapsed > 0 ? progress.rowsCopied / elapsed : 0;
  const left = Math.max(0, progress.estimatedRows - progress.rowsCopied);
  progress.etaSeconds = progress.rowsPerSecond > 0 && !chunk.done ? left / progress.rowsPerSecond : null;
  setCurrentDetails(run.describe());
  indexRowsWritten(run);
}

/** LakebaseRowsWritten := progress.rowsWritten; only when the start registered our search attributes (an unknown one would fail the workflow task). */
function indexRowsWritten(run: SyncRun): void {
  if (workflowInfo().typedSearchAttributes.get(LakebasePipeline) !== undefined)
    upsertSearchAttributes([{ key: LakebaseRowsWritten, value: run.progress.rowsWritten }]);
}

/** After a compare-then-copy or delete bucket: the figures into the UI's details and (FIGURES_PATCH) the search attribute. */
export function recordBucketWrites(run: SyncRun): void {
  const { progress } = run;
  const elapsed = (Date.now() - progress.startedAt) / 1000;
  // Rows read per second, as for chunks (a compare-then-copy run reads only what differs).
  if (run.figures && progress.resync) progress.rowsPerSecond = elapsed > 0 ? progress.rowsCopied / elapsed : 0;
  setCurrentDetails(run.describe());
  if (run.figures) indexRowsWritten(run);
}

/**
 * The plan's config fingerprint, for the inputs of its chunks and buckets (they refuse to run
 * under another config); nothing for plans of older workers, so their steps' inputs stay as recorded.
 */
export const plannedFingerprint = (plan: { fingerprint?: string } | undefined): { fingerprint?: string } => (plan?.fingerprint ? { fingerprint: plan.fingerprint } : {});
