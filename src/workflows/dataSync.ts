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
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { JobAuth, LakebaseTokenInfo, SqlText } from '../activities/types';

// Listed here (not imported) because workflow code must not load the db or auth layers.
const NON_RETRYABLE = [
  'LakebaseSqlError',
  'LakebaseDataError',
  'LakebaseConstraintError',
  'LakebaseConfigError',
  'LakebaseTokenInvalid',
  'LakebaseIdpTokenMissing',
  'LakebaseAuthConfigError',
];

const { planSync, acquireLakebaseToken } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
});

const { readBatch, transformBatch, writeBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
});

export interface SyncProgress {
  pipeline: string;
  /** Key of the last row committed to the target; the sync resumes after it. */
  lastKey: SqlText[] | null;
  rowsRead: number;
  rowsWritten: number;
  batches: number;
  /** Runs of this workflow so far (continue-as-new keeps the history small). */
  run: number;
  done: boolean;
  /** True while an on-behalf-of sync waits for the user to log in again. */
  waitingForRelogin: boolean;
  /** Non-secret metadata of the tokens this sync logs in with. */
  tokens: LakebaseTokenInfo[];
}

export interface DataSyncInput {
  pipeline: string;
  /** For login-idp profiles: the sealed IdP token of the user the sync runs for. */
  auth?: JobAuth;
  /** How long to wait for a fresh IdP token after TOKEN_EXPIRED before failing. Default 1 hour. */
  reloginTimeout?: string;
  /** Set by continue-as-new; users leave it out. */
  resume?: SyncProgress;
}

export const progressQuery = defineQuery<SyncProgress>('progress');
/** Delivers a fresh sealed IdP token to a sync waiting for re-login. */
export const idpTokenSignal = defineSignal<[string]>('idpToken');
/** Same as the signal, but the caller learns whether the sync accepted it. */
export const reloginUpdate = defineUpdate<{ accepted: boolean }, [string]>('relogin');

/** History size (bytes) after which a run hands over to a fresh one; rows pass through history here. */
const HISTORY_BYTES_LIMIT = 8 * 1024 * 1024;

function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;
}

export async function dataSync(input: DataSyncInput): Promise<SyncProgress> {
  const progress: SyncProgress = input.resume
    ? { ...input.resume, run: input.resume.run + 1, waitingForRelogin: false }
    : { pipeline: input.pipeline, lastKey: null, rowsRead: 0, rowsWritten: 0, batches: 0, run: 1, done: false, waitingForRelogin: false, tokens: [] };
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

  const pipeline = input.pipeline;
  let describe = () => `${pipeline}: starting`;

  /** Runs a step; a TOKEN_EXPIRED that only a person can fix pauses the sync until they log in again. */
  async function withRelogin<T>(step: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (failureType(err) !== 'LakebaseTokenExpired') throw err;
        progress.waitingForRelogin = true;
        setCurrentDetails(`⏸ waiting for re-login: the IdP token expired (TOKEN_EXPIRED). ${describe()}`);
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

  const plan = await withRelogin(() => planSync({ pipeline, auth }));
  describe = () =>
    `${plan.source.relation} → ${plan.target.table} (${plan.mode}): ${progress.batches} batches, ` +
    `${progress.rowsRead} rows read, ${progress.rowsWritten} written${progress.done ? ', done' : ''}`;

  // Warm the worker's token cache once; SQL activities then log in without token requests.
  const sides = [plan.source, plan.target].filter(
    (s, i, all) => all.findIndex((o) => o.profile === s.profile && o.environment === s.environment) === i,
  );
  progress.tokens = await withRelogin(() =>
    Promise.all(sides.map((s) => acquireLakebaseToken({ profile: s.profile, environment: s.environment, auth }))),
  );
  setCurrentDetails(describe());

  for (;;) {
    const batch = await withRelogin(() => readBatch({ pipeline, after: progress.lastKey, limit: plan.batchRows, auth }));
    if (batch.rows.length === 0) break;
    const out = plan.rowTransform ? await transformBatch({ pipeline, batch }) : batch;
    const { rowsWritten } = await withRelogin(() => writeBatch({ pipeline, batch: out, auth }));
    progress.lastKey = batch.lastKey;
    progress.rowsRead += batch.rows.length;
    progress.rowsWritten += rowsWritten;
    progress.batches += 1;
    setCurrentDetails(describe());
    // A short page can also mean the byte budget cut it, so only an empty page ends the sync.
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historySize > HISTORY_BYTES_LIMIT) {
      await continueAsNew<typeof dataSync>({ pipeline, auth, reloginTimeout: input.reloginTimeout, resume: progress });
    }
  }
  progress.done = true;
  setCurrentDetails(describe());
  return progress;
}
