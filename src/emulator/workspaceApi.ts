import http from 'node:http';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { TOKEN_EXPIRED_MESSAGE, TOKEN_INVALID_MESSAGE } from '../auth/errors';
import type { BranchStore } from './branches';
import type { FederationPolicy, ResolvedEmulatorOptions } from './options';
import { z } from 'zod';
import type { ReadOnlyGrant, TokenStore } from './tokens';

export interface InjectedFailure {
  status: number;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  body?: Record<string, unknown>;
  /** How many requests fail before the endpoint recovers. */
  count: number;
  /** Handle the request first, then answer the failure: the work is done but its answer is lost. */
  afterHandling?: boolean;
}

export interface WorkspaceApi {
  server: http.Server;
  /** Requests seen per endpoint path (after routing: `/oidc/v1/token`, `/api/2.0/database/credentials`, …). */
  counts: Map<string, number>;
  /** Makes the next `count` requests to `path` fail with `status`. */
  failNext(path: string, failure: InjectedFailure): void;
  setTokenTtl(seconds: number): void;
}

type Reply = { status: number; body: unknown; headers?: Record<string, string> };

// Generate Database Credential's `claims` (both APIs): READ_ONLY is the only permission set today;
// resources name Unity Catalog tables, `catalog.schema.table`.
const claimsSchema = z
  .array(
    z.object({
      permission_set: z.enum(['PERMISSION_SET_UNSPECIFIED', 'READ_ONLY']).optional(),
      resources: z.array(z.object({ table_name: z.string().regex(/^[^.]+\.[^.]+\.[^.]+$/, 'table_name must be a full Unity Catalog name, catalog.schema.table') })).optional(),
    }),
  )
  .optional();

/**
 * The grant a credential's claims ask for: read-only (the tables, as the database's `schema.table`,
 * or all of them when no resources are named), or undefined without a READ_ONLY claim.
 */
export function readOnlyClaims(raw: unknown): { grant?: ReadOnlyGrant } | { error: string } {
  const parsed = claimsSchema.safeParse(raw);
  if (!parsed.success) return { error: `claims: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  const readOnly = (parsed.data ?? []).filter((c) => c.permission_set === 'READ_ONLY');
  if (!readOnly.length) return {};
  const tables = readOnly.flatMap((c) => (c.resources ?? []).map((r) => r.table_name.split('.').slice(1).join('.')));
  return { grant: { tables: [...new Set(tables)].sort() } };
}

const oauthError = (status: number, error: string, description: string): Reply => ({
  status,
  body: { error, error_description: description },
});

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function createWorkspaceApi(opts: ResolvedEmulatorOptions, store: TokenStore, baseUrl: () => string, branches: BranchStore): WorkspaceApi {
  const counts = new Map<string, number>();
  const failures = new Map<string, InjectedFailure>();
  let tokenTtl = opts.tokenTtlSeconds;
  const jwksByUri = new Map<string, JWTVerifyGetKey>();

  async function jwksFor(policy: FederationPolicy): Promise<JWTVerifyGetKey> {
    let uri = policy.jwksUri;
    if (!uri) {
      // Databricks' default: the issuer's OpenID discovery document names the JWKS.
      const res = await fetch(`${policy.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`discovery answered ${res.status}`);
      uri = ((await res.json()) as { jwks_uri?: string }).jwks_uri;
      if (!uri) throw new Error('discovery document has no jwks_uri');
    }
    let set = jwksByUri.get(uri);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000 });
      jwksByUri.set(uri, set);
    }
    return set;
  }

  async function tokenExchange(form: URLSearchParams): Promise<Reply> {
    const subject = form.get('subject_token');
    if (!subject) return oauthError(400, 'invalid_request', 'subject_token is required');
    if (form.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:jwt')
      return oauthError(400, 'invalid_request', 'subject_token_type must be urn:ietf:params:oauth:token-type:jwt');
    const clientId = form.get('client_id') ?? undefined;
    const invalid = oauthError(400, 'invalid_request', TOKEN_INVALID_MESSAGE);
    const candidates = opts.federationPolicies.filter((p) => (clientId ? p.servicePrincipal === clientId : !p.servicePrincipal));
    let claims: ReturnType<typeof decodeJwt>;
    try {
      claims = decodeJwt(subject);
    } catch {
      return invalid; // not a JWT
    }
    const policy = candidates.find((p) => p.issuer === claims.iss);
    if (!policy) return invalid;
    try {
      const { payload } = await jwtVerify(subject, await jwksFor(policy), { issuer: policy.issuer, audience: policy.audiences });
      if (policy.subject && payload.sub !== policy.subject) return invalid;
      const identity = clientId ?? String(payload[policy.subjectClaim] ?? '');
      if (!identity) return invalid;
      const t = store.issue(identity, 'oauth', tokenTtl);
      return { status: 200, body: { access_token: t.token, token_type: 'Bearer', expires_in: tokenTtl, scope: 'all-apis' } };
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_JWT_EXPIRED') return oauthError(400, 'invalid_request', TOKEN_EXPIRED_MESSAGE);
      return invalid; // bad signature, aud/iss mismatch, JWKS unreachable
    }
  }

  function clientCredentials(form: URLSearchParams, authorization: string | undefined): Reply {
    let clientId = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    if (authorization?.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      clientId = decodeURIComponent(decoded.slice(0, i));
      secret = decodeURIComponent(decoded.slice(i + 1));
    }
    const sp = opts.servicePrincipals.find((s) => s.clientId === clientId);
    if (!sp || sp.clientSecret !== secret) return oauthError(401, 'invalid_client', 'Client authentication failed');
    if (!(form.get('scope') ?? '').split(' ').includes('all-apis')) return oauthError(400, 'invalid_scope', 'scope must include all-apis');
    const t = store.issue(sp.clientId, 'oauth', tokenTtl);
    return { status: 200, body: { access_token: t.token, token_type: 'Bearer', expires_in: tokenTtl, scope: 'all-apis' } };
  }

  function bearerIdentity(authorization: string | undefined): string | undefined {
    const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
    const rec = token ? store.valid(token) : undefined;
    return rec && rec.kind !== 'database-credential' ? rec.identity : undefined;
  }

  function credential(path: string, body: Record<string, unknown>, authorization: string | undefined): Reply {
    const identity = bearerIdentity(authorization);
    if (!identity) return { status: 401, body: { error_code: 'UNAUTHENTICATED', message: 'Invalid access token.' } };
    const ttl = opts.credentialTtlSeconds;
    const claims = readOnlyClaims(body.claims);
    if ('error' in claims) return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: claims.error } };
    const readOnly = claims.grant;
    if (path === '/api/2.0/database/credentials') {
      const names = body.instance_names;
      if (!Array.isArray(names) || names.length === 0 || !names.every((n) => opts.databaseInstances.includes(String(n))))
        return { status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Database instance ${JSON.stringify(names)} does not exist.` } };
      const t = store.issue(identity, 'database-credential', ttl, readOnly);
      return { status: 200, body: { token: t.token, expiration_time: new Date(t.expiresAt).toISOString() } };
    }
    if (typeof body.endpoint !== 'string' || !branches.hasEndpoint(body.endpoint))
      return { status: 404, body: { error_code: 'NOT_FOUND', message: `Endpoint ${JSON.stringify(body.endpoint)} not found.` } };
    // Generate Database Credential: ttl must be 300–3600 seconds (API reference); "<n>s" as protobuf durations are written.
    let lifetime = ttl;
    if (body.ttl !== undefined) {
      const m = typeof body.ttl === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(body.ttl) : null;
      const secs = m ? Number(m[1]) : NaN;
      if (!(secs >= 300 && secs <= 3600))
        return { status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE', message: `ttl ${JSON.stringify(body.ttl)} must be at least 300 seconds (5 minutes) and at most 3600 seconds (1 hour).` } };
      lifetime = secs;
    }
    const t = store.issue(identity, 'database-credential', lifetime, readOnly);
    return { status: 200, body: { token: t.token, expire_time: new Date(t.expiresAt).toISOString() } };
  }

  function metadata(base: string): Reply {
    return {
      status: 200,
      body: {
        issuer: base,
        token_endpoint: `${base}/v1/token`,
        authorization_endpoint: `${base}/v1/authorize`,
        grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'authorization_code', 'refresh_token'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
        scopes_supported: ['all-apis', 'offline_access'],
        response_types_supported: ['code'],
      },
    };
  }

  async function route(req: http.IncomingMessage, path: string, query: URLSearchParams): Promise<Reply> {
    const accountBase = `/oidc/accounts/${opts.accountId}`;
    const isMetadata = (p: string) => p.endsWith('/.well-known/oauth-authorization-server') || p.endsWith('/.well-known/openid-configuration');
    if (req.method === 'GET' && isMetadata(path)) {
      const prefix = path.slice(0, path.indexOf('/.well-known/'));
      if (prefix === '/oidc' || prefix === accountBase) return metadata(`${baseUrl()}${prefix}`);
      return { status: 404, body: { error_code: 'NOT_FOUND', message: 'no such OIDC server' } };
    }
    if (req.method === 'POST' && (path === '/oidc/v1/token' || path === `${accountBase}/v1/token`)) {
      const form = new URLSearchParams(await readBody(req));
      const grant = form.get('grant_type');
      if (grant === 'client_credentials') return clientCredentials(form, req.headers.authorization);
      if (grant === 'urn:ietf:params:oauth:grant-type:token-exchange') return tokenExchange(form);
      return oauthError(400, 'unsupported_grant_type', `grant_type ${grant ?? '(none)'} is not supported`);
    }
    if (req.method === 'POST' && (path === '/api/2.0/database/credentials' || path === '/api/2.0/postgres/credentials')) {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>;
      } catch {
        return { status: 400, body: { error_code: 'MALFORMED_REQUEST', message: 'body is not JSON' } };
      }
      return credential(path, body, req.headers.authorization);
    }
    // Projects, branches, endpoints (Get Endpoint answers status.hosts.host) and their operations.
    if (path.startsWith('/api/2.0/postgres/projects/')) {
      const identity = bearerIdentity(req.headers.authorization);
      if (!identity) return { status: 401, body: { error_code: 'UNAUTHENTICATED', message: 'Invalid access token.' } };
      let body: Record<string, unknown> = {};
      if (req.method === 'POST') {
        try {
          body = JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>;
        } catch {
          return { status: 400, body: { error_code: 'MALFORMED_REQUEST', message: 'body is not JSON' } };
        }
      }
      const r = branches.handle(req.method ?? 'GET', path, query, body, identity);
      if (r) return r;
    }
    return { status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for '${req.method} ${path}'` } };
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const send = (r: Reply) => {
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(JSON.stringify(r.body));
    };
    const failure = failures.get(path);
    if (failure && failure.count > 0) {
      failure.count--;
      const injected = () => ({
        status: failure.status,
        body: failure.body ?? { error: failure.status === 429 ? 'slow_down' : 'temporarily_unavailable', error_description: 'injected by the emulator' },
        headers: failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : undefined,
      });
      if (!failure.afterHandling) {
        req.resume();
        send(injected());
        return;
      }
      route(req, path, url.searchParams).then(() => send(injected()), () => send(injected()));
      return;
    }
    route(req, path, url.searchParams).then(send, (err: Error) => send({ status: 500, body: { error: 'server_error', error_description: err.message } }));
  });

  return {
    server,
    counts,
    failNext: (path, failure) => void failures.set(path, { ...failure }),
    setTokenTtl: (seconds) => void (tokenTtl = seconds),
  };
}
