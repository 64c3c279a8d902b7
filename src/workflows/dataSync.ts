import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { LakebasePipeline, LakebaseRowsWritten } from './searchAttributes';
import type { Activities } from '../activities';
import type { CursorValue, JobAuth, LakebaseTokenInfo, SyncPlan } from '../activities/types';

// Listed here (not imported) because workflow code must not load the db or auth layers.
export const NON_RETRYABLE = [
  'LakebaseSqlError',
  'LakebaseDataError',
  'LakebaseConstraintError',
  'LakebaseConfigError',
  'LakebaseSyncConflict',
  'LakebaseInitialLoadConflict',
  'LakebaseTokenInvalid',
  'LakebaseIdpTokenMissing',
  'LakebaseAuthConfigError',
  'LakebaseTlsError',
];

const { planSync, finishSync, acquireLakebaseToken } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
});

// A chunk streams up to batchRows rows; it heartbeats while it does, so a dead worker is noticed quickly.
const chunkActivities = (heartbeatTimeout: string) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
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
    return (
      `${pipeline} (${progress.mode}): chunk ${progress.chunks}${chunkOf}, ${progress.rowsCopied.toLocaleString('en')} rows copied, ` +
      `${progress.rowsWritten.toLocaleString('en')} written, ${Math.round(progress.rowsPerSecond).toLocaleString('en')} rows/s` +
      `${formatEta(progress.etaSeconds)}${progress.done ? ' — done' : ''}`
    );
  };

  /** Runs a step; a TOKEN_EXPIRED that only a person can fix pauses the sync until they log in again. */
  async function withRelogin<T>(step: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (failureType(err) !== 'LakebaseTokenExpired') throw err;
        progress.waitingForRelogin = true;
        setCurrentDetails(`Paused, waiting for re-login: the IdP token expired (TOKEN_EXPIRED). ${describe()}`);
        const arrived = await condition(() => freshToken !== undefined, input.reloginTimeout ?? '1 hour');
        progress.waitingForRelogin = false;
        if (!arrived) {
          throw ApplicationFailure.nonRetryable(
            `no fresh IdP token arrived within ${input.reloginTimeout ?? '1 hour'} after TOKEN_EXPIRED; start the sync again after logging in`,
            'LakebaseTokenExpired',
          );
        }
        auth = { idpToken: freshToken! };
        freshToken = undefined;
        setCurrentDetails(describe());
      }
    }
  }

  let plan: SyncPlan | undefined;
  plan = await withRelogin(() => planSync({ pipeline, environment, runId, auth, continuing: input.resume !== undefined }));
  progress.mode = plan.mode;
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

  const { syncChunk } = chunkActivities(input.heartbeatTimeout ?? '1 minute');
  let chunksThisRun = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await withRelogin(() => syncChunk({ pipeline, environment, runId, after: progress.cursor, auth, initialLoad: progress.initialLoad }));
    } catch (err) {
      if (failureType(err) !== 'LakebaseInitialLoadConflict') throw err;
      progress.initialLoad = false; // the target is not ours alone: merge from now on
      continue;
    }
    progress.cursor = chunk.cursor;
    if (chunk.rowsCopied > 0 || chunk.alreadyCommitted) progress.chunks += 1;
    progress.rowsCopied += chunk.rowsCopied;
    progress.rowsWritten += chunk.rowsWritten;
    const elapsed = (Date.now() - progress.startedAt) / 1000;
    progress.rowsPerSecond = elapsed > 0 ? progress.rowsCopied / elapsed : 0;
    const left = Math.max(0, progress.estimatedRows - progress.rowsCopied);
    progress.etaSeconds = progress.rowsPerSecond > 0 && !chunk.done ? left / progress.rowsPerSecond : null;
    setCurrentDetails(describe());
    // Only when the start registered our search attributes (an unknown one would fail the workflow task).
    if (workflowInfo().typedSearchAttributes.get(LakebasePipeline) !== undefined)
      upsertSearchAttributes([{ key: LakebaseRowsWritten, value: progress.rowsWritten }]);
    if (chunk.done) break;
    chunksThisRun++;
    const info = workflowInfo();
    if (info.continueAsNewSuggested || (input.chunksPerRun !== undefined && chunksThisRun >= input.chunksPerRun)) {
      await continueAsNew<typeof dataSync>({ ...input, auth, resume: progress });
    }
  }
  await withRelogin(() => finishSync({ pipeline, environment, runId, auth }));
  progress.done = true;
  progress.etaSeconds = 0;
  setCurrentDetails(describe());
  return progress;
}
