import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { LakebaseAuthError } from '../auth/errors';
import { PostgresApiError } from '../auth/postgresApi';
import { SealingError } from '../auth/sealed';
import { LakebaseComputeWaking } from '../db/computeWake';
import { OpenTransactionsWait } from '../db/openTransactions';
import { classifySqlError, describeSqlError } from '../db/errors';
import { redactSecrets } from '../redact';
import { IdentifierError } from '../db/identifiers';
import { PipelineShapeError } from '../db/syncSql';
import { RowTransformError } from '../db/copyText';
import { UnknownNameError } from '../config/lookup';
import { JobParamError } from '../config/jobParams';
import { SyncError, RetryableSyncError } from '../sync/errors';
import { NON_RETRYABLE_FAILURES, RETRYABLE_FAILURES } from '../failureTypes';

/** Turns anything a SQL activity throws into a typed ApplicationFailure (the one place that does); secrets are scrubbed. */
export function toActivityFailure(err: unknown, statement: string, configPath?: string): ApplicationFailure {
  const failure = classify(err, statement, configPath);
  failure.message = redactSecrets(failure.message);
  if (failure.stack) failure.stack = redactSecrets(failure.stack);
  return failure;
}

function classify(err: unknown, statement: string, configPath?: string): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof LakebaseAuthError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.type,
      nonRetryable: !err.retryable,
      nextRetryDelay: err.retryAfterMs,
      details: [{ needsNewIdpToken: err.needsNewIdpToken }],
    });
  }
  if (err instanceof LakebaseComputeWaking || err instanceof OpenTransactionsWait) {
    // Retryable: the activity's retry policy gives the compute (or the source's open transactions) more time; the message says what to check.
    return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: false });
  }
  if (err instanceof SealingError) {
    return ApplicationFailure.create({ message: err.message, type: NON_RETRYABLE_FAILURES.authConfig, nonRetryable: true });
  }
  if (err instanceof PostgresApiError && err.operationFailed) {
    return ApplicationFailure.create({ message: err.message, type: NON_RETRYABLE_FAILURES.operationFailed, nonRetryable: true });
  }
  if (err instanceof RowTransformError && configPath) return ApplicationFailure.create({ type: NON_RETRYABLE_FAILURES.config, nonRetryable: true, message: `${configPath}: ${err.message}` });
  if (err instanceof JobParamError)
    return ApplicationFailure.create({ type: NON_RETRYABLE_FAILURES.jobParam, nonRetryable: true, message: err.message, details: [{ problems: err.problems }] });
  if (err instanceof SyncError) return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true });
  if (err instanceof RetryableSyncError) return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: false });
  if (err instanceof PipelineShapeError || err instanceof IdentifierError || err instanceof UnknownNameError) {
    return ApplicationFailure.create({ message: err.message, type: NON_RETRYABLE_FAILURES.config, nonRetryable: true });
  }
  const cls = classifySqlError(err);
  return ApplicationFailure.create({
    message: describeSqlError(err, statement),
    type: cls.type,
    nonRetryable: !cls.retryable,
    details: cls.sqlState ? [{ sqlState: cls.sqlState }] : undefined,
  });
}

export function configFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: NON_RETRYABLE_FAILURES.config, nonRetryable: true });
}

/** How an activity call names itself when it fails or is cancelled. */
export interface CallLabel {
  /** What ran, for failure messages: `syncChunk(orders) into public.orders`. */
  statement: string;
  /** A branch operation on this Lakebase project: Postgres API answers map to branch failures naming the fix. */
  branchProject?: string;
  /** The config entry a row-transform failure is reported under (`pipelines.orders`): the fix is in the config. */
  configPath?: string;
  /**
   * The message of the CancelledFailure a cancelled call ends with (so the workflow ends CANCELLED,
   * not FAILED). `abort`: when what it ran threw an AbortError; `signal`: whenever the activity's
   * cancellation signal fired (a dropped connection throws something else). Without it a
   * cancellation maps like any other failure.
   */
  cancelled?: { message: string; when: 'abort' | 'signal' };
}

/** The failure an activity call ends with: a cancellation as a CancelledFailure, anything else typed by toActivityFailure. */
export function callFailure(err: unknown, label: CallLabel, signalAborted: boolean): ApplicationFailure | CancelledFailure {
  const c = label.cancelled;
  if (c && (c.when === 'signal' ? signalAborted : (err as Error | undefined)?.name === 'AbortError')) return new CancelledFailure(c.message);
  if (label.branchProject !== undefined && err instanceof PostgresApiError) return branchFailure(err, label.statement, label.branchProject);
  return toActivityFailure(err, label.statement, label.configPath);
}

/**
 * Typed failures for Postgres API answers: a missing branch, a taken name and a 403 fail at once
 * with the fix; 429, 5xx and no answer are retried (Retry-After honoured).
 */
function branchFailure(err: PostgresApiError, what: string, project: string): ApplicationFailure {
  const code = err.errorCode ?? '';
  const fail = (type: string, fix: string) => ApplicationFailure.create({ type, nonRetryable: true, message: `${what}: ${err.message}; ${fix}` });
  if (err.status === 403 || code === 'PERMISSION_DENIED')
    return fail(NON_RETRYABLE_FAILURES.branchPermission, `creating and deleting branches needs CAN MANAGE on project ${project} (Lakebase console → project → Permissions); reading them needs CAN USE`);
  if (err.status === 404 || code === 'NOT_FOUND' || code === 'RESOURCE_DOES_NOT_EXIST')
    return fail(NON_RETRYABLE_FAILURES.branchNotFound, `check the project and branch names (Lakebase console → project → Branches)`);
  if (err.status === 409 || code === 'ALREADY_EXISTS' || code === 'RESOURCE_ALREADY_EXISTS')
    return fail(NON_RETRYABLE_FAILURES.branchExists, 'pick another --branch name, or drop --create-branch to run against the existing branch as it is');
  if (err.status === 400 || code === 'INVALID_PARAMETER_VALUE' || code === 'INVALID_STATE')
    return ApplicationFailure.create({ type: NON_RETRYABLE_FAILURES.config, nonRetryable: true, message: `${what}: ${err.message}` });
  if (err.operationFailed)
    return fail(NON_RETRYABLE_FAILURES.operationFailed, 'Lakebase accepted the request but could not do it; see the operation\'s error, then run again');
  // 429, 5xx, 401 (token refreshed below), no answer: try again.
  return ApplicationFailure.create({
    type: RETRYABLE_FAILURES.apiUnavailable,
    nonRetryable: false,
    message: `${what}: ${err.message}; retrying`,
    nextRetryDelay: err.retryAfter !== undefined ? err.retryAfter * 1000 : undefined,
  });
}

