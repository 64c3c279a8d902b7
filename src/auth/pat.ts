import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema';
import type { PasswordSource } from '../db/pools';

/**
 * Personal access token: the configured token is the Postgres password. A tokenFile is re-read on
 * every login so a rotated token is picked up without a restart.
 */
export function createPatPasswordSource(config: Config): PasswordSource {
  return async (profile) => {
    const auth = config.profiles[profile]?.auth;
    if (!auth) throw new Error(`unknown profile "${profile}"`);
    if (auth.token) return auth.token;
    if (auth.tokenFile) return (await readFile(auth.tokenFile, 'utf8')).trim();
    throw new Error(`profiles.${profile}.auth: no token or tokenFile configured`);
  };
}
