import { ApplicationFailure } from '@temporalio/common';
import { LakebaseAuthError } from '../auth/errors';
import { PostgresApiError } from '../auth/postgresApi';
import { SealingError } from '../auth/sealed';
import { LakebaseComputeWaking } from '../db/computeWake';
import { classifySqlError, describeSqlError } from '../db/errors';
import { redactSecrets } from '../redact';
import { IdentifierError } from '../db/identifiers';
import { PipelineShapeError } from '../db/syncSql';
import { UnknownNameError } from '../config/lookup';
import { SyncError } from '../sync/errors';
import { NON_RETRYABLE_FAILURES } from '../workflows/failureTypes';

/** Turns anything a SQL activity throws into a typed ApplicationFailure (the one place that does); secrets are scrubbed. */
export function toActivityFailure(err: unknown, statement: string): ApplicationFailure {
  const failure = classify(err, statement);
  failure.message = redactSecrets(failure.message);
  if (failure.stack) failure.stack = redactSecrets(failure.stack);
  return failure;
}

function classify(err: unknown, statement: string): ApplicationFailure {
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
  if (err instanceof LakebaseComputeWaking) {
    // Retryable: the activity's retry policy gives the compute more time; the message says what to check.
    return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: false });
  }
  if (err instanceof SealingError) {
    return ApplicationFailure.create({ message: err.message, type: 'LakebaseAuthConfigError', nonRetryable: true });
  }
  if (err instanceof PostgresApiError && err.operationFailed) {
    return ApplicationFailure.create({ message: err.message, type: NON_RETRYABLE_FAILURES.operationFailed, nonRetryable: true });
  }
  if (err instanceof SyncError) return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true });
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
