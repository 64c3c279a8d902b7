import * as oidc from 'openid-client';
import { z } from 'zod';
import type { CredentialConfig } from '../config/schema';
import { fingerprint } from './tokenCache';

/** What a Databricks token endpoint or credential API hands back, normalised. */
export interface IssuedSecret {
  token: string;
  expiresAt: number;
}

const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

function isLocal(host: string): boolean {
  const u = new URL(host);
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

/** RFC 8414 metadata document of the workspace (or account) OIDC server. */
export function discoveryUrl(workspaceHost: string, accountId?: string): URL {
  const base = accountId ? `${workspaceHost}/oidc/accounts/${encodeURIComponent(accountId)}` : `${workspaceHost}/oidc`;
  return new URL(`${base}/.well-known/oauth-authorization-server`);
}

// Account-wide user federation sends no client_id at all.
const noClientAuthentication: oidc.ClientAuth = () => undefined;

function expiresAt(expiresIn: number | undefined): number {
  // Databricks OAuth tokens live about an hour; assume that when expires_in is missing.
  return Date.now() + (expiresIn ?? 3600) * 1000;
}

export interface DatabricksOAuth {
  clientCredentials(p: { workspaceHost: string; accountId?: string; clientId: string; clientSecret: string }): Promise<IssuedSecret>;
  exchangeToken(p: { workspaceHost: string; accountId?: string; clientId?: string; subjectToken: string }): Promise<IssuedSecret>;
}

/** OAuth exchanges through openid-client; server metadata is discovered once per server and client. */
export function createDatabricksOAuth(opts: { timeoutSeconds?: number } = {}): DatabricksOAuth {
  const configs = new Map<string, Promise<oidc.Configuration>>();

  function configuration(host: string, accountId: string | undefined, clientId: string, auth: oidc.ClientAuth, authTag: string) {
    const url = discoveryUrl(host, accountId);
    const key = `${url.href}|${clientId}|${authTag}`;
    let c = configs.get(key);
    if (!c) {
      c = oidc.discovery(url, clientId, undefined, auth, {
        timeout: opts.timeoutSeconds ?? 30,
        execute: isLocal(host) ? [oidc.allowInsecureRequests] : [],
      });
      // A failed discovery must not poison the cache.
      c.catch(() => configs.delete(key));
      configs.set(key, c);
    }
    return c;
  }

  return {
    async clientCredentials({ workspaceHost, accountId, clientId, clientSecret }) {
      const cfg = await configuration(workspaceHost, accountId, clientId, oidc.ClientSecretBasic(clientSecret), fingerprint(clientSecret));
      const res = await oidc.clientCredentialsGrant(cfg, { scope: 'all-apis' });
      return { token: res.access_token, expiresAt: expiresAt(res.expires_in) };
    },
    async exchangeToken({ workspaceHost, accountId, clientId, subjectToken }) {
      const cfg = clientId
        ? await configuration(workspaceHost, accountId, clientId, oidc.None(), 'none')
        : await configuration(workspaceHost, accountId, 'account-federation', noClientAuthentication, 'no-client');
      const res = await oidc.genericGrantRequest(cfg, TOKEN_EXCHANGE, {
        subject_token: subjectToken,
        subject_token_type: JWT_TOKEN_TYPE,
        scope: 'all-apis',
      });
      return { token: res.access_token, expiresAt: expiresAt(res.expires_in) };
    },
  };
}

const provisionedAnswer = z.object({ token: z.string().min(1), expiration_time: z.string().optional() });
const autoscalingAnswer = z.object({ token: z.string().min(1), expire_time: z.string().optional() });

export class CredentialApiError extends Error {
  override name = 'CredentialApiError';
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly response?: Response,
    readonly error?: string,
    readonly error_description?: string,
  ) {
    super(message);
  }
}

/** What a connection will do with the credential: only read (the given tables, `schema.table`). */
export interface ReadOnlyAccess {
  readOnly: true;
  /** Tables it reads, `schema.table` (unqualified: `public`); scoped in the claim when the credential names its catalog. */
  tables?: readonly string[];
}

/** `schema.table` as given, with `public` for an unqualified name; sorted and deduplicated. */
export function normalTables(tables: readonly string[] | undefined): string[] {
  return [...new Set((tables ?? []).map((t) => (t.includes('.') ? t : `public.${t}`)))].sort();
}

/**
 * The `claims` of Generate Database Credential (both APIs): the READ_ONLY permission set, the only
 * one today, on the tables as full Unity Catalog names when the catalog is known.
 */
export function readOnlyClaims(credential: CredentialConfig, access: ReadOnlyAccess): { permission_set: 'READ_ONLY'; resources?: { table_name: string }[] }[] {
  const tables = normalTables(access.tables);
  const resources = credential.catalog && tables.length ? tables.map((t) => ({ table_name: `${credential.catalog}.${t}` })) : undefined;
  return [{ permission_set: 'READ_ONLY', ...(resources && { resources }) }];
}

/**
 * Exchanges an OAuth token for a Postgres credential (provisioned instances or autoscaling
 * endpoints); with `access`, one that may only read (READ_ONLY claims).
 */
export async function fetchDatabaseCredential(workspaceHost: string, bearer: string, credential: CredentialConfig, requestId: string, access?: ReadOnlyAccess): Promise<IssuedSecret> {
  const claims = access ? { claims: readOnlyClaims(credential, access) } : {};
  const [path, body] =
    credential.type === 'provisioned'
      ? ['/api/2.0/database/credentials', { instance_names: [credential.instanceName], request_id: requestId, ...claims }]
      : ['/api/2.0/postgres/credentials', { endpoint: credential.endpoint, ...(credential.ttlSeconds ? { ttl: `${credential.ttlSeconds}s` } : {}), ...claims }];
  let res: Response;
  try {
    res = await fetch(`${workspaceHost}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CredentialApiError(`database credential request failed: ${(err as Error).message}`, undefined);
  }
  const json: unknown = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = json as { error_code?: string; error?: string; message?: string; error_description?: string };
    throw new CredentialApiError(
      `database credential API ${path} answered HTTP ${res.status}: ${e.error_code ?? e.error ?? ''} ${e.message ?? e.error_description ?? ''}`.trim(),
      res.status,
      res,
      e.error_code ?? e.error,
      e.message ?? e.error_description,
    );
  }
  const parsed = (credential.type === 'provisioned' ? provisionedAnswer : autoscalingAnswer).safeParse(json);
  if (!parsed.success) throw new CredentialApiError(`database credential API ${path} returned an unexpected body`, res.status);
  const when = 'expiration_time' in parsed.data ? parsed.data.expiration_time : (parsed.data as { expire_time?: string }).expire_time;
  return { token: parsed.data.token, expiresAt: when ? Date.parse(when) : Date.now() + 3600_000 };
}

const endpointAnswer = z.object({ status: z.object({ hosts: z.object({ host: z.string().min(1) }) }) });

/**
 * Get Endpoint (GET /api/2.0/postgres/projects/{p}/branches/{b}/endpoints/{e}): the Postgres host of
 * a Lakebase Autoscaling compute, from status.hosts.host.
 */
export async function fetchEndpointHost(workspaceHost: string, bearer: string, endpoint: string): Promise<string> {
  const path = `/api/2.0/postgres/${endpoint.split('/').map(encodeURIComponent).join('/')}`;
  let res: Response;
  try {
    res = await fetch(`${workspaceHost}${path}`, { headers: { authorization: `Bearer ${bearer}` }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new CredentialApiError(`endpoint lookup ${path} failed: ${(err as Error).message}`, undefined);
  }
  const json: unknown = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = json as { error_code?: string; message?: string };
    throw new CredentialApiError(`Postgres API ${path} answered HTTP ${res.status}: ${e.error_code ?? ''} ${e.message ?? ''}`.trim(), res.status, res, e.error_code, e.message);
  }
  const parsed = endpointAnswer.safeParse(json);
  if (!parsed.success) throw new CredentialApiError(`Postgres API ${path} returned no status.hosts.host (is the endpoint still being created?)`, res.status);
  return parsed.data.status.hosts.host;
}
