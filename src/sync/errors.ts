import { NON_RETRYABLE_FAILURES, type NonRetryableFailureType, type RetryableFailureType } from '../failureTypes';

/**
 * A failure the engine decides on itself (not a database error): its type is the failure type
 * the activity layer reports, and none of them is worth retrying.
 */
export class SyncError extends Error {
  override name = 'SyncError';
  constructor(
    readonly type: NonRetryableFailureType,
    message: string,
  ) {
    super(message);
  }
}

/** A failure the engine decides on itself that another attempt gets past (its type says why). */
export class RetryableSyncError extends Error {
  override name = 'RetryableSyncError';
  constructor(
    readonly type: RetryableFailureType,
    message: string,
  ) {
    super(message);
  }
}

/** Fix the pipeline's config or tables. */
export const configError = (message: string) => new SyncError(NON_RETRYABLE_FAILURES.config, message);
/** Another run owns the pipeline's state now; this one stops so two runs never write at once. */
export const conflictError = (message: string) => new SyncError(NON_RETRYABLE_FAILURES.syncConflict, message);
/** A key already exists in a target loaded by plain COPY: the workflow redoes the chunk as a merge. */
export const initialLoadConflict = (message: string) => new SyncError(NON_RETRYABLE_FAILURES.initialLoadConflict, message);
/** A source column was added, dropped (schemaChanges: freeze) or changed its type: the target is left as it was. */
export const schemaChangedError = (message: string) => new SyncError(NON_RETRYABLE_FAILURES.schemaChanged, message);
