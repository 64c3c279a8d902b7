// The cdc engine's read of a pipeline's state and slot, and its leave, run from the CLI against the
// databases themselves: `cdc status` tells what the slot and target say now (a stream's figures in
// Temporal are as old as its last segment), and `cdc stop` leaves a slot no running stream holds
// (the stream failed or was never started), so a slot is never left behind; `cdc resync` marks a
// stopped pipeline for a fresh copy.
import type { Config } from '../config/schema';
import { createCredentialProvider } from '../auth/credentials';
import { createPoolRegistry } from '../db/pools';
import { createLogger } from '../logger';
import { createCdcEngine, type CdcStatus } from '../sync/cdc';

export interface DirectCdc {
  status(pipeline: string): Promise<CdcStatus>;
  leave(pipeline: string, dropSlot: boolean): Promise<{ slotDropped: boolean; stillUsedBy: string[] }>;
  /** Marks a stopped pipeline so that its next start copies the table anew (cdc resync). */
  park(pipeline: string, type: string, reason: string): Promise<void>;
  close(): Promise<void>;
}

export function directCdc(config: Config): DirectCdc {
  const logger = createLogger({ level: 'warn' });
  const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
  const engine = createCdcEngine({
    config,
    replicationConfig: () => Promise.reject(new Error('the CLI does not read replication slots')),
  });
  const ctx = { connect: (profile: string, environment: string) => pools.connect(profile, environment) };
  return {
    status: (pipeline) => engine.status(ctx, { pipeline }),
    leave: (pipeline, dropSlot) => engine.leave(ctx, { pipeline, dropSlot }),
    park: (pipeline, type, reason) => engine.park(ctx, { pipeline, type, reason }),
    close: () => pools.end(),
  };
}
