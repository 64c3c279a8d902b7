// How every workflow calls its activities: the option sets, failure typing, waiting for a waking
// scale-to-zero compute, and pausing for a user's re-login. dataSync, verifySync, operationalJob,
// syncGroup (and the CDC workflow) take these from here instead of keeping copies.
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, condition, defineSignal, defineUpdate, proxyActivities, setCurrentDetails, setHandler, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { JobAuth } from '../activities/types';
import { NON_RETRYABLE, RETRYABLE_FAILURES } from '../failureTypes';

/**
 * The failure types the server does not retry. With `wakeVisible` a still-waking compute is one of
 * them: the workflow waits for it itself, so its current details can say so.
 */
export const nonRetryableTypes = (wakeVisible: boolean): string[] => (wakeVisible ? [...NON_RETRYABLE, RETRYABLE_FAILURES.computeWaking] : NON_RETRYABLE);

/**
 * Short steps of a sync or verify (plans, finish, token warm-up): ten tries over a few minutes. The
 * adapter heartbeats for them (activities/adapter.ts), so a dead worker's step moves to another
 * within the heartbeat timeout, not the start-to-close.
 */
export const STEP_HEARTBEAT_TIMEOUT = '30 seconds';
export const stepActivities = (nonRetryableErrorTypes: string[]) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: STEP_HEARTBEAT_TIMEOUT,
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes },
  });

/**
 * Chunks and buckets: long, and heartbeating while they stream (or on a timer), so a dead worker's
 * share moves to another within the heartbeat timeout.
 */
export const streamingActivities = (heartbeatTimeout: string, nonRetryableErrorTypes: string[] = NON_RETRYABLE) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes },
  });

/** The start-to-close of a cdc stream segment under patch cdc-segment-long-transactions. */
export const CDC_SEGMENT_BACKSTOP = '365 days';

/**
 * A cdc stream segment: runs `runSeconds` and heartbeats throughout; retried without limit (a
 * stream resumes from the targets' checkpoints). Cancelled (cdc stop), it applies and confirms its
 * pending batch before the workflow goes on.
 */
export const cdcStreamActivities = (runSeconds: number, heartbeatTimeout: string, longTransactions = false) =>
  proxyActivities<Activities>({
    // A segment asked to end inside a source transaction ends at its commit, however long that takes
    // (docs/cdc.md): with longTransactions its start-to-close is a backstop no transaction reaches,
    // and the heartbeat timeout alone tells a dead worker. Before, runSeconds + 600 timed out a
    // segment waiting for a commit longer than that, and the next one received it all again.
    startToCloseTimeout: longTransactions ? CDC_SEGMENT_BACKSTOP : `${runSeconds + 600} seconds`,
    heartbeatTimeout,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
  });

/** Plans of jobs and groups: a config lookup (and for a dry run, EXPLAINs). */
export const { planJob } = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE } });
export const { planGroup } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE } });

/** A connection test runs once: its report, failed checks included, is the answer. */
// Read-only checks: a transient failure (a pooled connection the server just ended, 57P01) is
// retried; what is wrong with the setup is in the report, which a retry does not change (generative
// seed 1791241423: cdc start right after pg_terminate_backend failed its check).
export const { testConnection } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '5 minutes',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '5 seconds', maximumAttempts: 4, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** Job units: each runs with its own step's timeout and retry policy (executeWithOptions in operationalJob). */
export const { runJobUnit } = proxyActivities<Activities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '10 seconds' });

/** Branch operations are long-running on Lakebase's side; the activity polls and heartbeats. */
export const { prepareRunBranch } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** Cleanup outlives worker restarts (it is a scheduled activity) and transient API failures: retried for up to a day. */
export const { deleteRunBranch } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', nonRetryableErrorTypes: NON_RETRYABLE },
});

/** A failure's type as the workflow sees it (ActivityFailure → ApplicationFailure, or an ApplicationFailure itself). */
export function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

/** Workflow-level tries of a step whose login met a still-waking compute (each try already waited computeWakeTimeoutMs). */
export const COMPUTE_WAKE_TRIES = 5;

/**
 * When `err` is a login that met a still-waking compute and tries are left: what the UI shows while
 * the caller waits (`wakeBackoff`) and runs the step again — nothing of it ran. Otherwise undefined.
 * Synchronous on purpose: other failures go on at once, in the same order as before this existed.
 */
export function wakingCompute(err: unknown, tries: number): { headline: string; message: string } | undefined {
  if (failureType(err) !== RETRYABLE_FAILURES.computeWaking || tries >= COMPUTE_WAKE_TRIES) return undefined;
  return {
    headline: `Waiting for the compute to wake (${RETRYABLE_FAILURES.computeWaking}, try ${tries} of ${COMPUTE_WAKE_TRIES})`,
    message: err instanceof ActivityFailure ? (err.cause?.message ?? '') : '',
  };
}

/** The wait before the next try of a step that met a waking compute: 5 s, doubling, at most 60 s. */
export const wakeBackoff = (tries: number): Promise<void> => sleep(Math.min(5_000 * 2 ** (tries - 1), 60_000));

/** Delivers a fresh sealed IdP token to a run waiting for re-login. */
export const idpTokenSignal = defineSignal<[string]>('idpToken');
/** Same as the signal, but the caller learns whether the run accepted it. */
export const reloginUpdate = defineUpdate<{ accepted: boolean }, [string]>('relogin');

/** Whom a run's activities log in as: the sealed IdP token, a fresh one that arrived, and how often it was replaced. */
export interface RunIdentity {
  auth?: JobAuth;
  freshToken?: string;
  /** Bumped when a fresh token replaces `auth`: steps that failed with the old one retry with the new one. */
  generation: number;
  /** Whom the run's first token was exchanged as (from its token step): a re-login must be the same person. */
  person?: string;
}

/** Lets users hand a run a fresh IdP token (signal or update); the run picks it up when it next needs one. */
export function acceptRelogins(identity: RunIdentity): void {
  setHandler(idpTokenSignal, (sealed) => void (identity.freshToken = sealed));
  setHandler(
    reloginUpdate,
    (sealed) => {
      identity.freshToken = sealed;
      return { accepted: true };
    },
    {
      validator: (sealed) => {
        if (!sealed.startsWith('lbsealed:')) throw new Error('expected a sealed IdP token (use `lakebase-worker sync relogin`)');
      },
    },
  );
}

export interface RetryOptions {
  identity: RunIdentity;
  /** Whether this run waits for a waking compute itself (patched; older runs leave it to the server). */
  wakeVisible: boolean;
  /** How long to wait for a fresh IdP token after TOKEN_EXPIRED. Default 1 hour. */
  reloginTimeout?: string;
  /** What the UI and the progress query show while waiting. */
  status: { waitingForRelogin: boolean; computeWaking?: { tries: number; message: string } };
  describe: () => string;
}

/**
 * Wraps steps so that a TOKEN_EXPIRED only a person can fix pauses the run until they log in again,
 * and a compute still waking from scale-to-zero is waited for; the step then runs again.
 */
export function retryAfterReloginOrWake(o: RetryOptions): <T>(step: () => Promise<T>) => Promise<T> {
  const { identity, status } = o;
  const timeout = o.reloginTimeout ?? '1 hour';
  // One body (no helper awaits): the await points stay where recorded histories have them.
  return async function retrying<T>(step: () => Promise<T>): Promise<T> {
    for (let wakeTries = 1; ; ) {
      const generation = identity.generation;
      try {
        return await step();
      } catch (err) {
        const waking = o.wakeVisible ? wakingCompute(err, wakeTries) : undefined;
        if (waking) {
          status.computeWaking = { tries: wakeTries, message: waking.message };
          setCurrentDetails(`${waking.headline} — ${o.describe()}\n\n${waking.message}`);
          await wakeBackoff(wakeTries);
          wakeTries++;
          status.computeWaking = undefined;
          setCurrentDetails(o.describe());
          continue;
        }
        if (failureType(err) !== RETRYABLE_FAILURES.tokenExpired) throw err;
        if (identity.generation !== generation) continue;
        status.waitingForRelogin = true;
        setCurrentDetails(`Paused, waiting for re-login: the IdP token expired (TOKEN_EXPIRED). ${o.describe()}`);
        const arrived = await condition(() => identity.freshToken !== undefined || identity.generation !== generation, timeout);
        if (identity.generation !== generation) continue;
        status.waitingForRelogin = false;
        if (!arrived) {
          throw ApplicationFailure.nonRetryable(
            `no fresh IdP token arrived within ${timeout} after TOKEN_EXPIRED; start the sync again after logging in`,
            RETRYABLE_FAILURES.tokenExpired,
          );
        }
        identity.auth = { idpToken: identity.freshToken!, ...(identity.person && { sameAs: identity.person }) };
        identity.freshToken = undefined;
        identity.generation++;
        setCurrentDetails(o.describe());
      }
    }
  };
}
