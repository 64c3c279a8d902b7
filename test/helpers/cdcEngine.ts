import { createCredentialProvider } from '../../src/auth/credentials';
import type { Config } from '../../src/config/schema';
import { createPoolRegistry, type PoolRegistry } from '../../src/db/pools';
import { createLogger } from '../../src/logger';
import type { CallContext } from '../../src/sync';
import { createCdcEngine, type CdcEngine } from '../../src/sync/cdc';

/**
 * The cdc engine on its own (no Temporal): pools as the worker builds them, the context the
 * activities pass, and replication connections to the pool's server (or to `replicationPort`, a proxy in front of it).
 */
export function cdcEngineFor(config: Config, opts: { replicationPort?: number } = {}): { pools: PoolRegistry; cdc: CdcEngine; ctx: CallContext } {
  const logger = createLogger({ level: 'silent' });
  const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
  const cdc = createCdcEngine({
    config,
    replicationConfig: async (profile, environment) => {
      (await pools.connect(profile, environment)).release();
      const { host, port, database, user, password, ssl } = pools.get(profile, environment).options;
      return { host, port: opts.replicationPort ?? port, database, user, password, ssl };
    },
  });
  return { pools, cdc, ctx: { connect: (profile, environment) => pools.connect(profile, environment) } };
}

/** join, then the initial load one partition after another, then streaming: what the workflows do for a joining pipeline. */
export async function joinAndLoad(cdc: CdcEngine, ctx: CallContext, pipeline: string): Promise<void> {
  await cdc.join(ctx, { pipeline });
  const runId = `load-${pipeline}-${Date.now()}`;
  const plan = await cdc.load.plan(ctx, { pipeline, runId, partitioned: true });
  for (const part of plan.partitions!.filter((x) => !x.done))
    for (let after = part.cursor; ; ) {
      const c = await cdc.load.chunk(ctx, { pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
      after = c.cursor;
      if (c.done) break;
    }
  await cdc.load.finish(ctx, { pipeline, runId });
  await cdc.finishSnapshot(ctx, { pipeline });
}
