// The sync engine: plan, chunk and finish a pipeline's run against PostgreSQL. No Temporal here:
// activities adapt it (heartbeats, cancellation, typed failures), and tests drive it with pg alone.
import { syncChunk, type ChunkInput } from './chunk';
import { connectionBudget, type CallContext, type SyncEngineDeps } from './context';
import { deleteBucket, planDeletes, type DeleteBucketInput, type DeletesInput } from './deletes';
import { finishSync, type FinishInput } from './finish';
import { planSync, type PlanInput } from './plan';
import { resyncBucket, type ResyncBucketInput } from './resync';
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
export type * from './types';

export function createSyncEngine(deps: SyncEngineDeps) {
  const full = { ...deps, budget: deps.budget ?? connectionBudget(deps.config) };
  return {
    budget: full.budget,
    plan: (ctx: CallContext, input: PlanInput) => planSync(full, ctx, input),
    chunk: (ctx: CallContext, input: ChunkInput) => syncChunk(full, ctx, input),
    finish: (ctx: CallContext, input: FinishInput) => finishSync(full, ctx, input),
    planDeletes: (ctx: CallContext, input: DeletesInput) => planDeletes(full, ctx, input),
    deleteBucket: (ctx: CallContext, input: DeleteBucketInput) => deleteBucket(full, ctx, input),
    resyncBucket: (ctx: CallContext, input: ResyncBucketInput) => resyncBucket(full, ctx, input),
    planVerify: (ctx: CallContext, input: VerifyInput & { mode?: 'counts' | 'checksums' }) => planVerify(full, ctx, input),
    verifyBucket: (ctx: CallContext, input: VerifyBucketInput) => verifyBucket(full, ctx, input),
  };
}

export type SyncEngine = ReturnType<typeof createSyncEngine>;
