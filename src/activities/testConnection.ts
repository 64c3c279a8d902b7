import type { CredentialProvider } from '../auth/credentials';
import type { SealPrivateKey } from '../auth/sealed';
import type { Config } from '../config/schema';
import { diagnoseConnection, type ConnectionReport } from '../db/diagnose';
import type { PoolRegistry } from '../db/pools';
import { cdcPipelineReport } from '../sync/cdc/preflight';
import { runActivity } from './adapter';
import { sessionOf } from './sync';
import type { JobAuth } from './types';

export function createTestConnectionActivities(deps: { config: Config; credentials: CredentialProvider; sealingKeys: SealPrivateKey[]; pools?: PoolRegistry }) {
  /**
   * Test Connection from a worker: the same checks as the CLI, seen from where the jobs run. With a
   * cdc pipeline, its source's checks and then the cdc checks the join makes (cdc start --dry-run).
   */
  async function testConnection({ profile, environment, auth, pipeline }: { profile: string; environment: string; auth?: JobAuth; pipeline?: string }): Promise<ConnectionReport> {
    const session = sessionOf(auth, deps.sealingKeys, `connection:${profile}/${environment}`);
    const diagnose = (prof: string, env: string) => diagnoseConnection({ config: deps.config, credentials: deps.credentials, profile: prof, environment: env, session });
    if (!pipeline) return diagnose(profile, environment);
    const pools = deps.pools;
    if (!pools) throw new Error('testConnection of a cdc pipeline needs the worker\'s pools');
    return runActivity({ statement: `testConnection(${pipeline})` }, () => cdcPipelineReport(deps.config, pipeline, diagnose, (prof, env) => pools.connect(prof, env, session)));
  }
  return { testConnection };
}
