// Every failure type name, in one place at the bottom of the house: auth/, db/, sync/, activities/ and
// workflows/ all derive their unions and lists from here. Import-free on purpose: workflow code loads
// this file, and it must not pull in the db or auth layers.

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
  /**
   * The source cannot serve a cdc pipeline as it is (wal_level, REPLICATION right, replica identity vs key,
   * publication, free slots): found before anything is touched; the message names each fix.
   */
  cdcSourceNotReady: 'LakebaseCdcSourceNotReady',
  /** The source invalidated the slot (wal_status lost, past max_slot_wal_keep_size): its changes are gone; drop it and start again. */
  cdcSlotInvalidated: 'LakebaseCdcSlotInvalidated',
  /**
   * A long-running Lakebase operation (create/delete branch or endpoint) ran and reported failure:
   * an answer, not a missing one, so the same request is not sent again.
   */
  operationFailed: 'LakebaseOperationFailed',
} as const;

/** Worth another attempt (with backoff), or handled by the workflow itself. */
export const RETRYABLE_FAILURES = {
  transient: 'LakebaseTransientError',
  loginFailed: 'LakebaseLoginFailed',
  unknown: 'LakebaseUnknownError',
  tokenExpired: 'LakebaseTokenExpired',
  tokenEndpointUnavailable: 'LakebaseTokenEndpointUnavailable',
  /** The Databricks Postgres API (branches, endpoints, operations) answered 429 or 5xx, or not at all. */
  apiUnavailable: 'LakebaseApiUnavailable',
  /** A scale-to-zero compute still waking after computeWakeTimeoutMs (src/db/computeWake.ts). */
  computeWaking: 'LakebaseComputeWaking',
  /** A cdc join waited too long for source transactions open at the join (src/db/openTransactions.ts). */
  cdcJoinWaiting: 'LakebaseCdcJoinWaiting',
  /**
   * A cdc reader found its target's checkpoint past its own (another attempt committed meanwhile):
   * it stops without writing; the next attempt starts from the checkpoint (src/sync/cdc/stream.ts).
   */
  cdcReaderFenced: 'LakebaseCdcReaderFenced',
} as const;

/**
 * What a workflow itself ends with (not an activity's failure): kept out of the activity option sets'
 * nonRetryableErrorTypes so the commands recorded in histories stay the same.
 */
export const WORKFLOW_FAILURES = {
  /** A syncGroup whose child syncs did not all succeed (src/workflows/syncGroup.ts). */
  syncGroupFailed: 'LakebaseSyncGroupFailed',
  /** testConnection: a check of the report failed; the report is the failure's details. */
  connectionTestFailed: 'LakebaseConnectionTestFailed',
} as const;

type ValueOf<T> = T[keyof T];
export type NonRetryableFailureType = ValueOf<typeof NON_RETRYABLE_FAILURES>;
export type RetryableFailureType = ValueOf<typeof RETRYABLE_FAILURES>;
export type FailureType = NonRetryableFailureType | RetryableFailureType | ValueOf<typeof WORKFLOW_FAILURES>;

/** The failure types the token layer (src/auth/) raises. */
export type AuthFailureType = (typeof NON_RETRYABLE_FAILURES)['tokenInvalid' | 'staticTokenExpired' | 'idpTokenMissing' | 'authConfig'] | (typeof RETRYABLE_FAILURES)['tokenExpired' | 'tokenEndpointUnavailable' | 'apiUnavailable'];

/** The failure types a PostgreSQL / network error classifies as (src/db/errors.ts). */
export type SqlFailureType =
  | (typeof NON_RETRYABLE_FAILURES)['tls' | 'sql' | 'data' | 'constraint' | 'cdcSourceNotReady' | 'cdcSlotInvalidated']
  | (typeof RETRYABLE_FAILURES)['transient' | 'loginFailed' | 'unknown'];

/** The workflows' nonRetryableErrorTypes list. */
export const NON_RETRYABLE: string[] = Object.values(NON_RETRYABLE_FAILURES);
