// Failure type names shared by activities, the sync engine and workflows. Import-free on purpose:
// workflow code loads this file, and it must not pull in the db or auth layers.

/** Fix the config, the SQL or the data: retrying cannot help. */
export const NON_RETRYABLE_FAILURES = {
  sql: 'LakebaseSqlError',
  data: 'LakebaseDataError',
  constraint: 'LakebaseConstraintError',
  config: 'LakebaseConfigError',
  syncConflict: 'LakebaseSyncConflict',
  initialLoadConflict: 'LakebaseInitialLoadConflict',
  /** The source's columns changed in a way the pipeline's schemaChanges policy (or any policy, for a type change) refuses. */
  schemaChanged: 'LakebaseSchemaChanged',
  tokenInvalid: 'LakebaseTokenInvalid',
  staticTokenExpired: 'LakebaseStaticTokenExpired',
  idpTokenMissing: 'LakebaseIdpTokenMissing',
  authConfig: 'LakebaseAuthConfigError',
  tls: 'LakebaseTlsError',
  jobParam: 'LakebaseJobParamError',
  jobNotApproved: 'LakebaseJobNotApproved',
  /** verify found rows that differ between source and target (named in the message and details). */
  verifyFailed: 'LakebaseVerifyFailed',
  /** A branch run: the branch (or the parent it is made from) does not exist (src/activities/branches.ts). */
  branchNotFound: 'LakebaseBranchNotFound',
  /** A branch run asked to create a branch whose name is taken by one this run did not make. */
  branchExists: 'LakebaseBranchExists',
  /** Creating or deleting a branch needs CAN MANAGE on the project (HTTP 403). */
  branchPermission: 'LakebaseBranchPermissionDenied',
  /** A cdc pipeline's replication slot is gone from the source (dropped behind the worker): its changes since are lost. */
  cdcSlotMissing: 'LakebaseCdcSlotMissing',
} as const;

/** Worth another attempt (with backoff), or handled by the workflow itself. */
export const RETRYABLE_FAILURES = {
  transient: 'LakebaseTransientError',
  loginFailed: 'LakebaseLoginFailed',
  unknown: 'LakebaseUnknownError',
  tokenExpired: 'LakebaseTokenExpired',
  tokenEndpointUnavailable: 'LakebaseTokenEndpointUnavailable',
  /** A scale-to-zero compute still waking after computeWakeTimeoutMs (src/db/computeWake.ts). */
  computeWaking: 'LakebaseComputeWaking',
} as const;

export type NonRetryableFailureType = (typeof NON_RETRYABLE_FAILURES)[keyof typeof NON_RETRYABLE_FAILURES];
export type FailureType = NonRetryableFailureType | (typeof RETRYABLE_FAILURES)[keyof typeof RETRYABLE_FAILURES];

/** The workflows' nonRetryableErrorTypes list. */
export const NON_RETRYABLE: string[] = Object.values(NON_RETRYABLE_FAILURES);
