// The sync engine: plan, chunk and finish a pipeline's run against PostgreSQL. No Temporal here:
// activities adapt it (heartbeats, cancellation, typed failures), and tests drive it with pg alone.
import { syncChunk, type ChunkInput } from './chunk';
import { connectionBudget, type CallContext, type SyncEngineDeps } from './context';
import { deleteBucket, planDeletes, type DeleteBucketInput, type DeletesInput } from './deletes';
import { finishSync, type FinishInput } from './finish';
import { planSync, type PlanInput } from './plan';
import { resyncBucket, type ResyncBucketInput } from './resync';
import { resolveRun, type ResolvedRun } from './run';
import { planVerify, verifyBucket, type VerifyBucketInput, type VerifyInput } from './verify';

export type { CallContext, Connector, SyncEngineDeps } from './context';
export type { ChunkInput } from './chunk';
export type { FinishInput } from './finish';
export type { PlanInput } from './plan';
export type { DeleteBucketInput, DeletesInput } from './deletes';
export type { VerifyBucketInput, VerifyInput } from './verify';
export type { ResyncBucketInput } from './resync';
export { partitionCount } from './plan';
export { SyncError } from './errors';
export { ConnectionBudget } from './gates';
export { fingerprintOf, PipelineDriftError, type ResolvedRun } from './run';
export type * from './types';

/**
 * The engine over one config. Each call takes the run resolved once by its caller (an activity
 * resolves it for its label too), or resolves it from the input's name (tests, the cdc engine).
 */
export function createSyncEngine(deps: SyncEngineDeps) {
  const full = { ...deps, budget: deps.budget ?? connectionBudget(deps.config) };
  type Named = { pipeline: string; environment?: string };
  const resolve = (input: Named): ResolvedRun => resolveRun(full, input.pipeline, input.environment);
  return {
    budget: full.budget,
    resolve,
    plan: (ctx: CallContext, input: PlanInput, run = resolve(input)) => planSync(full, ctx, run, input),
    chunk: (ctx: CallContext, input: ChunkInput, run = resolve(input)) => syncChunk(full, ctx, run, input),
    finish: (ctx: CallContext, input: FinishInput, run = resolve(input)) => finishSync(full, ctx, run, input),
    planDeletes: (ctx: CallContext, input: DeletesInput, run = resolve(input)) => planDeletes(full, ctx, run, input),
    deleteBucket: (ctx: CallContext, input: DeleteBucketInput, run = resolve(input)) => deleteBucket(full, ctx, run, input),
    resyncBucket: (ctx: CallContext, input: ResyncBucketInput, run = resolve(input)) => resyncBucket(full, ctx, run, input),
    planVerify: (ctx: CallContext, input: VerifyInput & { mode?: 'counts' | 'checksums' }, run = resolve(input)) => planVerify(full, ctx, run, input),
    verifyBucket: (ctx: CallContext, input: VerifyBucketInput, run = resolve(input)) => verifyBucket(full, ctx, run, input),
  };
}

export type SyncEngine = ReturnType<typeof createSyncEngine>;
