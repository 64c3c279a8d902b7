import type { CredentialProvider } from '../auth/credentials';
import type { SealPrivateKey } from '../auth/sealed';
import { lookupEnvironment } from '../config/lookup';
import { runActivity } from './adapter';
import { sessionOf } from './sync';
import type { AcquireTokenInput, LakebaseTokenInfo } from './types';
import type { Config } from '../config/schema';

export interface TokenDeps {
  config: Config;
  credentials: CredentialProvider;
  sealingKeys: SealPrivateKey[];
}

export function createTokenActivities({ config, credentials, sealingKeys }: TokenDeps) {
  /**
   * Warms (or refreshes) this worker's token cache for a profile/environment and returns metadata
   * only. SQL activities on this worker then log in without a token request of their own.
   */
  async function acquireLakebaseToken({ profile, environment, auth }: AcquireTokenInput): Promise<LakebaseTokenInfo> {
    return runActivity({ statement: `acquireLakebaseToken(${profile}/${environment})` }, async () => {
      lookupEnvironment(config, profile, environment);
      const t = await credentials.acquire(profile, environment, sessionOf(auth, sealingKeys));
      return {
        profile,
        environment,
        identity: t.identity,
        expiresAt: new Date(t.expiresAt).toISOString(),
        fingerprint: t.fingerprint,
        workerTokenRequests: credentials.cache.fetches,
      };
    });
  }
  return { acquireLakebaseToken };
}
