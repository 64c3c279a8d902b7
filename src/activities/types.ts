// Types shared by activities and workflows. No runtime imports: workflows load this file too.

import type { ChunkInput } from '../sync/chunk';
import type { FinishInput } from '../sync/finish';
import type { PlanInput } from '../sync/plan';

export type {
  BucketRange,
  ChunkResult,
  CursorValue,
  DeleteBucketResult,
  DryRunReport,
  DeletePlan,
  FinishResult,
  PartitionPlan,
  ResyncBucketResult,
  ResyncPlan,
  SwapReport,
  SyncPlan,
  TargetShapeReport,
  VerifyBucketResult,
  VerifyDifference,
  VerifyPlan,
  VerifyReport,
} from '../sync/types';

/** Carried by on-behalf-of (login-idp) jobs: the user's IdP token, sealed — never plaintext in history. */
export interface JobAuth {
  idpToken: string;
  /** A re-login's token must speak for this identity: the one the run's first token was exchanged as. */
  sameAs?: string;
}

export type PlanSyncInput = PlanInput & { auth?: JobAuth };
export type SyncChunkInput = ChunkInput & { auth?: JobAuth };
export type FinishSyncInput = FinishInput & { auth?: JobAuth };

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
  /** The identity whose signed start the worker verified (approval jobs). */
  startedBy?: string;
  /** Dry run: EXPLAIN output of each read/write step. */
  explain?: { step: string; plan: string }[];
  /** A branch run: the branch the steps run on (environment stays the configured one). */
  branch?: string;
}

export interface PlanJobInput {
  job: string;
  params: Record<string, JobParamValue>;
  environment?: string;
  dryRun?: boolean;
  auth?: JobAuth;
  /** A branch run: connect to this branch's endpoint instead of the environment's. */
  branch?: RunBranchTarget;
  /** The start, signed by the identity that asked for it (approval jobs). */
  signedStart?: SignedStatement;
  /** The run's start time (epoch ms, from the server): a signed start must be this recent. */
  runStartedAt?: number;
}

/** An approve/reject to check: signed by a configured approver, for this run, not by its starter. */
export interface VerifyJobDecisionInput {
  job: string;
  decision: 'approve' | 'reject';
  signed: SignedStatement;
  startedBy?: string;
}
import type { SignedStatement } from '../auth/signedDecisions';

export type { RunBranchRequest } from '../config/branches';
import type { RunBranchRequest } from '../config/branches';

/** The branch (and its read-write endpoint) a branch run's steps connect to. */
export interface RunBranchTarget {
  name: string;
  endpoint: string;
}

export interface PrepareRunBranchInput {
  job: string;
  environment?: string;
  branch: RunBranchRequest;
  auth?: JobAuth;
}

/** What prepareRunBranch found or made: names only, safe for history. */
export interface RunBranchInfo {
  branch: string;
  project: string;
  /** projects/{p}/branches/{parent} it was made from (or, for an existing branch, the environment's branch). */
  parent: string;
  /** Id of the branch's read-write endpoint. */
  endpoint: string;
  /** Made for this run (and so deleted after it when asked). */
  created: boolean;
  /** Made by an earlier attempt whose answer was lost, and taken over. */
  adopted?: boolean;
  expireTime?: string;
}

export interface DeleteRunBranchInput {
  job: string;
  environment?: string;
  branch: string;
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
  branch?: RunBranchTarget;
}

/** The signal a running cdc segment sends its figures by (its payload: a CdcStreamResult); defined here, below both the activity that sends it and the workflow that takes it. */
export const CDC_FIGURES_SIGNAL = 'cdcFigures';
