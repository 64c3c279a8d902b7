// The sync engine: plan, chunk and finish a pipeline's run against PostgreSQL. No Temporal here:
// activities adapt it (heartbeats, cancellation, typed failures), and tests drive it with pg alone.
import { syncChunk, type ChunkInput } from './chunk';
import { connectionBudget, type CallContext, type SyncEngineDeps } from './context';
import { finishSync, type FinishInput } from './finish';
import { planSync, type PlanInput } from './plan';

export type { CallContext, Connector, SyncEngineDeps } from './context';
export type { ChunkInput } from './chunk';
export type { FinishInput } from './finish';
export type { PlanInput } from './plan';
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
  };
}

export type SyncEngine = ReturnType<typeof createSyncEngine>;
