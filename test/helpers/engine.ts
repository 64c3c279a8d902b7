import { createCredentialProvider } from '../../src/auth/credentials';
import type { Config } from '../../src/config/schema';
import { createPoolRegistry, type PoolRegistry } from '../../src/db/pools';
import { createLogger } from '../../src/logger';
import { createSyncEngine, type CallContext, type SyncEngine } from '../../src/sync';

/** The sync engine on its own (no Temporal): pools as the worker builds them, and the context the activities pass. */
export function engineFor(config: Config): { pools: PoolRegistry; engine: SyncEngine; ctx: CallContext } {
  const logger = createLogger({ level: 'silent' });
  const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
  return { pools, engine: createSyncEngine({ config }), ctx: { connect: (profile, environment) => pools.connect(profile, environment) } };
}
