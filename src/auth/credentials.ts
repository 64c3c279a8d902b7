import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AuthConfig, Config, CredentialConfig, EnvironmentConfig } from '../config/schema';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { inSpan } from '../telemetry/spans';
import { createDatabricksOAuth, fetchDatabaseCredential, fetchEndpointHost, normalTables, type DatabricksOAuth, type ReadOnlyAccess } from './databricks';

export type { ReadOnlyAccess };
import { authError, classifyTokenEndpointError, LakebaseAuthError, type AuthContext } from './errors';
import { assertSecureWorkspace } from './secureHost';
import { DatabricksAuthResolutionError, resolveDatabricksAuth } from './unifiedAuth';
import { createTokenCache, fingerprint, type CachedToken, type TokenCache } from './tokenCache';

/** Per-job identity: the IdP token of the person a login-idp job runs for (plaintext, in-process only). */
export interface Session {
  idpToken?: string;
  /** The identity this token must exchange as (a re-login mid-run may not switch people). */
  expectedIdentity?: string;
}

export interface CredentialProvider {
  /**
   * Cached-or-fresh Postgres password (a Lakebase token) for (profile, environment, identity); with
   * `access`, a READ_ONLY database credential scoped to its tables (cached apart from the writable one).
   */
  acquire(profile: string, environment: string, session?: Session, access?: ReadOnlyAccess): Promise<CachedToken>;
  /** Forget a credential the server refused, so the next login fetches a new one. */
  invalidate(profile: string, environment: string, session?: Session, access?: ReadOnlyAccess): void;
  /** Distinguishes pools/cache entries of different people in login-idp profiles; '' otherwise. */
  identityKey(profile: string, session?: Session): string;
  readonly cache: TokenCache;
  /** The Postgres host: `host` as configured, or looked up (once, then cached) for an Autoscaling project/branch/endpoint. */
  host(profile: string, environment: string, session?: Session): Promise<string>;
  /** The workspace URL and a bearer token for the profile's Databricks REST calls (the Postgres API of branch runs). */
  workspace(profile: string, session?: Session): Promise<{ workspaceHost: string; bearer: string }>;
}

/** projects/{p}/branches/{b}/endpoints/{e} of an Autoscaling environment, or undefined. */
export function endpointName(env: EnvironmentConfig): string | undefined {
  return env.project && env.branch && env.endpoint ? `projects/${env.project}/branches/${env.branch}/endpoints/${env.endpoint}` : undefined;
}

/** The credential exchange an environment asks for; an Autoscaling environment implies one for its endpoint. */
export function credentialOf(env: EnvironmentConfig): CredentialConfig | undefined {
  if (env.credential) return env.credential;
  const endpoint = endpointName(env);
  return endpoint ? { type: 'autoscaling', endpoint } : undefined;
}

export interface CredentialProviderOptions {
  config: Config;
  logger: Logger;
  cache?: TokenCache;
  oauth?: DatabricksOAuth;
  metrics?: Metrics;
  /** Where method: databricks looks for DATABRICKS_* (and HOME); process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Waits before re-reading a federation tokenFile whose token came back TOKEN_EXPIRED (a rotation may be under way). */
  tokenFileRereadDelaysMs?: number[];
}

/** An auth config with method: databricks already resolved to the PAT or M2M it found. */
export type ConcreteAuth = Exclude<AuthConfig, { method: 'databricks' }>;

/** Resolves method: databricks through unified auth; other methods pass through. */
export function concreteAuth(profile: string, auth: AuthConfig, env: NodeJS.ProcessEnv = process.env): ConcreteAuth {
  if (auth.method !== 'databricks') return auth;
  try {
    const r = resolveDatabricksAuth(auth, env, `profiles.${profile}.auth`);
    return r.method === 'pat'
      ? { method: 'pat', token: r.token, workspaceHost: r.workspaceHost }
      : { method: 'm2m', workspaceHost: r.workspaceHost, clientId: r.clientId, clientSecret: r.clientSecret, accountId: r.accountId };
  } catch (err) {
    if (err instanceof DatabricksAuthResolutionError) throw new LakebaseAuthError('LakebaseAuthConfigError', err.message, false);
    throw err;
  }
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

/** The person a user-federation token speaks for, as federation policies usually map it (email, else sub). */
function jwtPerson(token: string): string | undefined {
  const claims = unverifiedClaims(token);
  const v = claims?.email ?? claims?.sub;
  return typeof v === 'string' ? v : undefined;
}

/** The cache and pool key part of an access scope: '' for read-write, else `ro:` and a hash of its tables. */
export function accessKey(access?: ReadOnlyAccess): string {
  if (!access) return '';
  return `ro:${createHash('sha256').update(normalTables(access.tables).join('\n')).digest('hex').slice(0, 16)}`;
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

  const resolved = new Map<string, ConcreteAuth>();
  function authOf(profile: string): ConcreteAuth {
    const auth = config.profiles[profile]?.auth;
    if (!auth) throw new Error(`unknown profile "${profile}"`);
    // Resolved once per provider (i.e. per worker process): the environment and ~/.databrickscfg are read at first use.
    let r = resolved.get(profile);
    if (!r) {
      r = concreteAuth(profile, auth, opts.env);
      if ('workspaceHost' in r && r.workspaceHost) assertSecureWorkspace(r.workspaceHost, `profiles.${profile}.auth.workspaceHost`, opts.env);
      resolved.set(profile, r);
    }
    return r;
  }

  // Per-process key: cache keys of different people cannot be computed or compared outside this worker.
  const identityHmacKey = randomBytes(32);
  /**
   * A keyed hash of the whole IdP token. Never its claims: they are unverified until the exchange,
   * and a cache hit exchanges nothing, so a forged token with someone's `sub` would get their entry.
   */
  function identityKey(_profile: string, session?: Session): string {
    if (!session?.idpToken) return '';
    return createHmac('sha256', identityHmacKey).update(session.idpToken).digest('hex').slice(0, 32);
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

  /** A re-login token (fresh or from the cache) must speak for the person the run started as. */
  function samePerson(profile: string, t: CachedToken, session?: Session): CachedToken {
    if (session?.expectedIdentity && t.identity !== session.expectedIdentity)
      throw new LakebaseAuthError('LakebaseAuthConfigError', `profile "${profile}": the re-login token speaks for ${t.identity}, but this run belongs to ${session.expectedIdentity}; log in again as ${session.expectedIdentity}`, false);
    return t;
  }

  /** The OAuth token (or PAT) for a profile: the Bearer for Databricks APIs and the default Postgres password. */
  async function oauthToken(profile: string, session?: Session): Promise<CachedToken> {
    return samePerson(profile, await cachedOauthToken(profile, session), session);
  }

  async function cachedOauthToken(profile: string, session?: Session): Promise<CachedToken> {
    const auth = authOf(profile);
    const ctx: AuthContext = { profile, method: auth.method, canMint: canMint(auth) && !session?.idpToken };
    const key = `oauth|${profile}|${identityKey(profile, session)}`;
    return cache.get(key, () => inSpan('lakebase.token_request', { 'lakebase.profile': profile, 'lakebase.auth.method': auth.method }, async () => {
      opts.metrics?.tokenRequests.inc({ profile });
      try {
        // A server that asks for no password (trust, peer): pg calls for one only if the server does.
        if (auth.method === 'none') return { token: '', expiresAt: Date.now() + PAT_REREAD_MS * 2, identity: 'no password (method none)' };
        if (auth.method === 'password') {
          // Native Postgres password role: the same re-read rhythm as a PAT file.
          const token = auth.password ?? (await readFile(auth.passwordFile!, 'utf8')).trim();
          return { token, expiresAt: Date.now() + PAT_REREAD_MS * 2, identity: 'password', guessable: true };
        }
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
        // The exchange verified the token, so its claims can be read now.
        const identity = auth.clientId ?? jwtPerson(subject) ?? 'federated';
        log.info({ profile, method: 'federation', identity, fingerprint: fingerprint(t.token), expiresAt: new Date(t.expiresAt).toISOString() }, 'token acquired');
        return { ...t, identity };
      } catch (err) {
        const classified = classifyTokenEndpointError(err, ctx);
        opts.metrics?.authFailures.inc({ type: classified.type });
        log.warn({ profile, method: auth.method, type: classified.type, retryable: classified.retryable }, 'token request failed');
        throw classified;
      }
    }));
  }

  async function acquire(profile: string, environment: string, session?: Session, access?: ReadOnlyAccess): Promise<CachedToken> {
    const env = config.profiles[profile]?.environments[environment];
    if (!env) throw new Error(`unknown profile/environment ${profile}/${environment}`);
    const credential = credentialOf(env);
    if (!credential) return oauthToken(profile, session);
    const auth = authOf(profile);
    // The schema allows credential only with methods that reach a workspace (not password).
    const host = 'workspaceHost' in auth ? auth.workspaceHost! : '';
    const ctx: AuthContext = { profile, method: auth.method, canMint: canMint(auth) && !session?.idpToken };
    // Without a credential exchange (a PAT or OAuth token as the password) there is nothing to scope:
    // such connections are read-only only by the session setting the pool makes (db/pools.ts).
    const key = `db|${profile}|${environment}|${identityKey(profile, session)}|${accessKey(access)}`;
    const attrs = { 'lakebase.profile': profile, 'lakebase.environment': environment, 'lakebase.credential.read_only': access !== undefined };
    return samePerson(profile, await cache.get(key, () => inSpan('lakebase.database_credential', attrs, async () => {
      for (let attempt = 1; ; attempt++) {
        const bearer = await oauthToken(profile, session);
        try {
          const t = await fetchDatabaseCredential(host, bearer.token, credential, randomUUID(), access);
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
    })), session);
  }

  const hosts = new Map<string, Promise<string>>();
  function host(profile: string, environment: string, session?: Session): Promise<string> {
    const env = config.profiles[profile]?.environments[environment];
    if (!env) return Promise.reject(new Error(`unknown profile/environment ${profile}/${environment}`));
    if (env.host) return Promise.resolve(env.host);
    const endpoint = endpointName(env)!;
    let p = hosts.get(endpoint);
    if (!p) {
      p = (async () => {
        const auth = authOf(profile);
        const ws = 'workspaceHost' in auth ? auth.workspaceHost! : '';
        const bearer = await oauthToken(profile, session);
        try {
          const h = await fetchEndpointHost(ws, bearer.token, endpoint);
          log.info({ profile, environment, endpoint, host: h }, 'endpoint host looked up');
          return h;
        } catch (err) {
          const status = (err as { status?: number }).status;
          const detail = status === 404 ? `${(err as Error).message}: check project, branch and endpoint of environment ${environment}` : (err as Error).message;
          // No answer, 429 or 5xx from the Postgres API (not the token endpoint): worth retrying (the
          // workflows treat LakebaseAuthConfigError as final).
          const transient = status === undefined || status === 429 || status >= 500;
          throw new LakebaseAuthError(transient ? 'LakebaseApiUnavailable' : 'LakebaseAuthConfigError', `profiles.${profile}.environments.${environment}: ${detail}`, transient);
        }
      })();
      // A failed lookup is not cached: the next attempt asks again.
      p.catch(() => hosts.delete(endpoint));
      hosts.set(endpoint, p);
    }
    return p;
  }

  async function workspace(profile: string, session?: Session): Promise<{ workspaceHost: string; bearer: string }> {
    const auth = authOf(profile);
    const ws = 'workspaceHost' in auth ? auth.workspaceHost : undefined;
    if (!ws) throw new LakebaseAuthError('LakebaseAuthConfigError', `profiles.${profile}.auth: calling the Lakebase Postgres API needs a workspace: set workspaceHost (method ${auth.method})`, false);
    return { workspaceHost: ws, bearer: (await oauthToken(profile, session)).token };
  }

  return {
    cache,
    host,
    workspace,
    acquire,
    identityKey,
    invalidate(profile, environment, session, access) {
      const id = identityKey(profile, session);
      cache.invalidate(`db|${profile}|${environment}|${id}|${accessKey(access)}`);
      cache.invalidate(`oauth|${profile}|${id}`);
    },
  };
}
