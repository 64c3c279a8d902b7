import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AuthConfig, Config } from '../config/schema';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { createDatabricksOAuth, fetchDatabaseCredential, type DatabricksOAuth } from './databricks';
import { authError, classifyTokenEndpointError, LakebaseAuthError, type AuthContext } from './errors';
import { createTokenCache, fingerprint, type CachedToken, type TokenCache } from './tokenCache';

/** Per-job identity: the IdP token of the person a login-idp job runs for (plaintext, in-process only). */
export interface Session {
  idpToken?: string;
}

export interface CredentialProvider {
  /** Cached-or-fresh Postgres password (a Lakebase token) for (profile, environment, identity). */
  acquire(profile: string, environment: string, session?: Session): Promise<CachedToken>;
  /** Forget a credential the server refused, so the next login fetches a new one. */
  invalidate(profile: string, environment: string, session?: Session): void;
  /** Distinguishes pools/cache entries of different people in login-idp profiles; '' otherwise. */
  identityKey(profile: string, session?: Session): string;
  readonly cache: TokenCache;
}

export interface CredentialProviderOptions {
  config: Config;
  logger: Logger;
  cache?: TokenCache;
  oauth?: DatabricksOAuth;
  metrics?: Metrics;
  /** Waits before re-reading a federation tokenFile whose token came back TOKEN_EXPIRED (a rotation may be under way). */
  tokenFileRereadDelaysMs?: number[];
}

const TOKEN_FILE_REREAD_DELAYS_MS = [1_000, 2_000, 4_000];

/** A PAT has no expiry we can see; re-read it this often so a rotated tokenFile is picked up. */
const PAT_REREAD_MS = 10 * 60_000;

/** A JWT's claims, decoded without verification — used only to key caches and label logs, never to trust. */
function unverifiedClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function jwtSubject(token: string): string | undefined {
  const sub = unverifiedClaims(token)?.sub;
  return typeof sub === 'string' ? sub : undefined;
}

/** The person a user-federation token speaks for, as federation policies usually map it (email, else sub). */
function jwtPerson(token: string): string | undefined {
  const claims = unverifiedClaims(token);
  const v = claims?.email ?? claims?.sub;
  return typeof v === 'string' ? v : undefined;
}

export function canMint(auth: AuthConfig): boolean {
  if (auth.method !== 'federation') return true;
  return auth.subjectToken.source === 'static' && auth.subjectToken.tokenFile !== undefined;
}

export function createCredentialProvider(opts: CredentialProviderOptions): CredentialProvider {
  const { config, logger } = opts;
  const cache = opts.cache ?? createTokenCache();
  const oauth = opts.oauth ?? createDatabricksOAuth();
  const log = logger.child({ component: 'auth' });

  function authOf(profile: string): AuthConfig {
    const auth = config.profiles[profile]?.auth;
    if (!auth) throw new Error(`unknown profile "${profile}"`);
    return auth;
  }

  function identityKey(profile: string, session?: Session): string {
    if (!session?.idpToken) return '';
    return jwtSubject(session.idpToken) ?? fingerprint(session.idpToken);
  }

  async function subjectToken(profile: string, auth: Extract<AuthConfig, { method: 'federation' }>, ctx: AuthContext, session?: Session) {
    if (session?.idpToken) return session.idpToken;
    const src = auth.subjectToken;
    if (src.source === 'login-idp') throw authError('LakebaseIdpTokenMissing', ctx);
    if (src.token) return src.token;
    try {
      return (await readFile(src.tokenFile!, 'utf8')).trim();
    } catch (err) {
      throw new LakebaseAuthError(
        'LakebaseAuthConfigError',
        `profiles.${profile}.auth.subjectToken.tokenFile: cannot read ${src.tokenFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        true, // a workload-identity file may appear shortly (projected volumes)
      );
    }
  }

  /**
   * Token exchange for a federation profile. A static token that comes back TOKEN_EXPIRED can never
   * be renewed by a re-login: inline, it fails at once (LakebaseStaticTokenExpired, with the fix);
   * from a tokenFile, the file is re-read a few times with backoff first, as a rotated workload
   * token would be.
   */
  async function exchangeSubjectToken(profile: string, auth: Extract<AuthConfig, { method: 'federation' }>, ctx: AuthContext, session?: Session) {
    const isStatic = !session?.idpToken && auth.subjectToken.source === 'static';
    const delays = isStatic && auth.subjectToken.source === 'static' && auth.subjectToken.tokenFile ? (opts.tokenFileRereadDelaysMs ?? TOKEN_FILE_REREAD_DELAYS_MS) : [];
    for (let attempt = 0; ; attempt++) {
      const subject = await subjectToken(profile, auth, ctx, session);
      try {
        const t = await oauth.exchangeToken({ workspaceHost: auth.workspaceHost, accountId: auth.accountId, clientId: auth.clientId, subjectToken: subject });
        return { ...t, subject };
      } catch (err) {
        if (!isStatic || classifyTokenEndpointError(err, ctx).type !== 'LakebaseTokenExpired') throw err;
        const wait = delays[attempt];
        if (wait === undefined) {
          const from = auth.subjectToken.source === 'static' && auth.subjectToken.tokenFile ? `tokenFile ${auth.subjectToken.tokenFile} (re-read ${delays.length} times)` : 'subjectToken.token';
          throw authError('LakebaseStaticTokenExpired', ctx, from);
        }
        log.warn({ profile, waitMs: wait }, 'subject token from tokenFile expired; re-reading the file after a pause');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** The OAuth token (or PAT) for a profile: the Bearer for Databricks APIs and the default Postgres password. */
  function oauthToken(profile: string, session?: Session): Promise<CachedToken> {
    const auth = authOf(profile);
    const ctx: AuthContext = { profile, method: auth.method, canMint: canMint(auth) && !session?.idpToken };
    const key = `oauth|${profile}|${identityKey(profile, session)}`;
    return cache.get(key, async () => {
      opts.metrics?.tokenRequests.inc({ profile });
      try {
        if (auth.method === 'pat') {
          const token = auth.token ?? (await readFile(auth.tokenFile!, 'utf8')).trim();
          return { token, expiresAt: Date.now() + PAT_REREAD_MS * 2, identity: 'pat' };
        }
        if (auth.method === 'm2m') {
          const clientSecret = auth.clientSecret ?? (await readFile(auth.clientSecretFile!, 'utf8')).trim();
          const t = await oauth.clientCredentials({ workspaceHost: auth.workspaceHost, accountId: auth.accountId, clientId: auth.clientId, clientSecret });
          log.info({ profile, method: 'm2m', fingerprint: fingerprint(t.token), expiresAt: new Date(t.expiresAt).toISOString() }, 'token acquired');
          return { ...t, identity: auth.clientId };
        }
        const { subject, ...t } = await exchangeSubjectToken(profile, auth, ctx, session);
        const identity = auth.clientId ?? jwtPerson(subject) ?? 'federated';
        log.info({ profile, method: 'federation', identity, fingerprint: fingerprint(t.token), expiresAt: new Date(t.expiresAt).toISOString() }, 'token acquired');
        return { ...t, identity };
      } catch (err) {
        const classified = classifyTokenEndpointError(err, ctx);
        opts.metrics?.authFailures.inc({ type: classified.type });
        log.warn({ profile, method: auth.method, type: classified.type, retryable: classified.retryable }, 'token request failed');
        throw classified;
      }
    });
  }

  async function acquire(profile: string, environment: string, session?: Session): Promise<CachedToken> {
    const env = config.profiles[profile]?.environments[environment];
    if (!env) throw new Error(`unknown profile/environment ${profile}/${environment}`);
    if (!env.credential) return oauthToken(profile, session);
    const auth = authOf(profile);
    const host = auth.workspaceHost!;
    const credential = env.credential;
    const ctx: AuthContext = { profile, method: auth.method, canMint: canMint(auth) && !session?.idpToken };
    const key = `db|${profile}|${environment}|${identityKey(profile, session)}`;
    return cache.get(key, async () => {
      for (let attempt = 1; ; attempt++) {
        const bearer = await oauthToken(profile, session);
        try {
          const t = await fetchDatabaseCredential(host, bearer.token, credential, randomUUID());
          return { ...t, identity: bearer.identity };
        } catch (err) {
          // A revoked/expired OAuth token: drop it and mint one more time.
          if ((err as { status?: number }).status === 401 && attempt === 1) {
            cache.invalidate(`oauth|${profile}|${identityKey(profile, session)}`, bearer.token);
            continue;
          }
          throw classifyTokenEndpointError(err, ctx);
        }
      }
    });
  }

  return {
    cache,
    acquire,
    identityKey,
    invalidate(profile, environment, session) {
      const id = identityKey(profile, session);
      cache.invalidate(`db|${profile}|${environment}|${id}`);
      cache.invalidate(`oauth|${profile}|${id}`);
    },
  };
}
