import type { CredentialProvider } from '../auth/credentials';
import type { SealingKey } from '../auth/sealed';
import type { Config } from '../config/schema';
import { diagnoseConnection, type ConnectionReport } from '../db/diagnose';
import { sessionOf } from './sync';
import type { JobAuth } from './types';

export function createTestConnectionActivities(deps: { config: Config; credentials: CredentialProvider; sealingKeys: SealingKey[] }) {
  /** Test Connection from a worker: the same checks as the CLI, seen from where the jobs run. */
  async function testConnection({ profile, environment, auth }: { profile: string; environment: string; auth?: JobAuth }): Promise<ConnectionReport> {
    return diagnoseConnection({ config: deps.config, credentials: deps.credentials, profile, environment, session: sessionOf(auth, deps.sealingKeys) });
  }
  return { testConnection };
}
