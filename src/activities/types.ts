// Types shared by activities and workflows. No runtime imports: workflows load this file too.

/** Order values of a row in PostgreSQL text form (exact for every type). */
export type CursorValue = string | null;

/** Carried by on-behalf-of (login-idp) jobs: the user's IdP token, sealed — never plaintext in history. */
export interface JobAuth {
  idpToken: string;
}

export interface SyncPlan {
  pipeline: string;
  mode: 'full-refresh' | 'append' | 'upsert';
  chunkRows: number;
  /** Target columns ordering the chunks (cursor first, then key). */
  order: string[];
  rowTransform?: string;
  source: { profile: string; environment: string; relation: string };
  target: { profile: string; environment: string; table: string };
  /** Where this run starts: after this cursor (null = from the beginning). */
  startCursor: CursorValue[] | null;
  /** True when a previous run's uncommitted remainder is being picked up. */
  resumed: boolean;
  /** Planner's estimate of the rows left to copy (for progress only). */
  estimatedRows: number;
  /** The target was empty at the start: chunks COPY straight into it (keys only grow), skipping the merge. */
  initialLoad: boolean;
}

export interface PlanSyncInput {
  pipeline: string;
  /** Runs both sides against this environment of their profiles instead of the configured ones (e.g. staging). */
  environment?: string;
  /** Owner of the sync state while this run lasts (the workflow id: stable across continue-as-new). */
  runId: string;
  auth?: JobAuth;
  /** After continue-as-new: describe the plan without touching the state. */
  continuing?: boolean;
}

export interface SyncChunkInput {
  pipeline: string;
  environment?: string;
  runId: string;
  /** The cursor the workflow believes is committed; the chunk copies rows after it. */
  after: CursorValue[] | null;
  auth?: JobAuth;
  /** From the plan: COPY straight into the target (falls back to a merge if a key already exists). */
  initialLoad?: boolean;
}

export interface ChunkResult {
  /** Cursor committed with this chunk (or found already committed). */
  cursor: CursorValue[] | null;
  rowsCopied: number;
  /** Rows inserted, changed or deleted in the target (unchanged rows are not written). */
  rowsWritten: number;
  bytes: number;
  /** No rows remain after `cursor`. */
  done: boolean;
  /** An earlier attempt had committed this chunk already; nothing was copied. */
  alreadyCommitted: boolean;
}

export interface FinishSyncInput {
  pipeline: string;
  environment?: string;
  runId: string;
  auth?: JobAuth;
}

export interface AcquireTokenInput {
  profile: string;
  environment: string;
  auth?: JobAuth;
}

/** What the token activity returns: metadata only, safe for workflow history. */
export interface LakebaseTokenInfo {
  profile: string;
  environment: string;
  identity: string;
  expiresAt: string;
  fingerprint: string;
  /** Token requests this worker process has made so far (all profiles). */
  workerTokenRequests: number;
}

export interface GroupPlan {
  group: string;
  pipelines: string[];
  parallelism: number;
}

export type JobParamValue = string | number | boolean | null;

export interface JobStepPlan {
  name: string;
  kind: 'read' | 'transform' | 'write' | 'sql';
  timeout: string;
  retry: { maximumAttempts?: number; initialInterval?: string; maximumInterval?: string };
  into?: string;
}

/** Consecutive steps run by one activity: a transaction group, or a single step. */
export interface JobUnit {
  transaction?: string;
  steps: JobStepPlan[];
}

export interface JobPlan {
  job: string;
  description?: string;
  profile: string;
  environment: string;
  /** Validated parameters, as bound (PostgreSQL text). */
  params: Record<string, string | null>;
  units: JobUnit[];
  approval: boolean;
  /** Dry run: EXPLAIN output of each read/write step. */
  explain?: { step: string; plan: string }[];
}

export interface PlanJobInput {
  job: string;
  params: Record<string, JobParamValue>;
  environment?: string;
  dryRun?: boolean;
  auth?: JobAuth;
}

export interface StepOutput {
  name: string;
  kind: JobStepPlan['kind'];
  rowCount: number;
  /** read steps without `into`: up to 100 rows, as text. */
  rows?: Record<string, string | null>[];
  truncated?: boolean;
}

export interface RunJobUnitInput {
  job: string;
  environment: string;
  params: Record<string, string | null>;
  steps: string[];
  transaction?: string;
  /** First rows of earlier read steps, for :step.column placeholders. */
  outputs: Record<string, Record<string, string | null>>;
  auth?: JobAuth;
}
