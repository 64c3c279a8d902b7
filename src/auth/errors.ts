/**
 * The one place that turns Databricks token-endpoint answers into typed auth failures, each with
 * the documented resolution (see docs/errors.md).
 */

import type { AuthFailureType } from '../failureTypes';

export type { AuthFailureType };

export const TOKEN_EXPIRED_MESSAGE = 'Failed to process token: TOKEN_EXPIRED';
export const TOKEN_INVALID_MESSAGE = 'Failed to process token: TOKEN_INVALID (Ensure a valid federation policy has been configured)';
export const IDP_TOKEN_MISSING_MESSAGE =
  'IntegrationOAuthError: OAuth2 - "On-Behalf-Of Token Exchange" could not find identity provider token';

type Transient = 'LakebaseTokenEndpointUnavailable' | 'LakebaseApiUnavailable';

export const RESOLUTION: Record<Exclude<AuthFailureType, Transient>, string> = {
  LakebaseTokenExpired:
    'The IdP token (from the login identity provider, or the static token you provided) has expired. ' +
    'For login-idp: log in again and send the fresh IdP token to the waiting workflow ' +
    '(`lakebase-worker sync relogin <workflowId> --idp-token-file <file>`), or start the job again. ' +
    'For a static token: obtain a new federated JWT from your identity provider.',
  LakebaseStaticTokenExpired:
    'The static subject token of this profile has expired, and a static token never renews itself, so the run fails ' +
    'at once instead of waiting for a re-login. Put a fresh federated JWT from your identity provider into ' +
    'subjectToken.token, or use subjectToken.tokenFile with a file your platform keeps fresh (the worker re-reads it ' +
    'a few times with backoff before giving up), then start the run again.',
  LakebaseTokenInvalid:
    'Make sure the aud and iss configured in the Databricks federation policy are the same aud and iss your IdP uses ' +
    'when issuing tokens, and that the policy points to a valid JWKS URI. By default Databricks uses the URI from ' +
    '<issuer-url>/.well-known/openid-configuration; change it if your IdP uses a non-default authorization server ' +
    'or has no discovery URL. The subject token must be a JWT.',
  LakebaseIdpTokenMissing:
    'The profile uses subjectToken.source: login-idp but the job was started without the user\'s IdP token. ' +
    'Start it with the IdP token of the user it runs for (`--idp-token-file`), which requires an OIDC-based ' +
    'identity provider, or switch the profile to subjectToken.source: static.',
  LakebaseAuthConfigError:
    'Check the profile\'s workspaceHost, clientId and clientSecret (or accountId): the token endpoint rejected them.',
};

export class LakebaseAuthError extends Error {
  override name = 'LakebaseAuthError';
  constructor(
    readonly type: AuthFailureType,
    message: string,
    readonly retryable: boolean,
    /** Server-requested wait (Retry-After), if any. */
    readonly retryAfterMs?: number,
    /** True when only a fresh IdP token from a person can fix it (the workflow waits for one). */
    readonly needsNewIdpToken = false,
  ) {
    super(message);
  }
}

export interface AuthContext {
  profile: string;
  method: 'pat' | 'm2m' | 'federation' | 'password' | 'none';
  /** Whether this worker can get a new subject token by itself (m2m; federation from a file). */
  canMint: boolean;
}

function retryAfterMs(header: string | null | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

interface HttpErrorShape {
  status?: number;
  error?: string;
  error_description?: string;
  headers?: { get(name: string): string | null };
}

/** Pulls status, OAuth error fields and headers out of an openid-client/oauth4webapi or fetch error. */
export function httpErrorShape(err: unknown): HttpErrorShape {
  const e = err as {
    status?: number;
    error?: string;
    error_description?: string;
    response?: Response;
    cause?: unknown;
  };
  const response = e?.response ?? (e?.cause instanceof Response ? e.cause : undefined);
  const body = (e?.cause && typeof e.cause === 'object' && !(e.cause instanceof Response) ? e.cause : {}) as {
    error?: string;
    error_description?: string;
  };
  return {
    status: e?.status ?? response?.status,
    error: e?.error ?? body.error,
    error_description: e?.error_description ?? body.error_description,
    headers: response?.headers,
  };
}

export function authError(type: Exclude<AuthFailureType, Transient>, ctx: AuthContext, detail?: string): LakebaseAuthError {
  const head =
    type === 'LakebaseTokenExpired' || type === 'LakebaseStaticTokenExpired' ? TOKEN_EXPIRED_MESSAGE
    : type === 'LakebaseTokenInvalid' ? TOKEN_INVALID_MESSAGE
    : type === 'LakebaseIdpTokenMissing' ? IDP_TOKEN_MISSING_MESSAGE
    : `profile "${ctx.profile}": the Databricks token endpoint rejected the client credentials${detail ? ` (${detail})` : ''}`;
  const source = type === 'LakebaseStaticTokenExpired' && detail ? `, static token from ${detail}` : '';
  const message = `${head} [profile ${ctx.profile}, method ${ctx.method}${source}]. Resolution: ${RESOLUTION[type]}`;
  if (type === 'LakebaseTokenExpired') return new LakebaseAuthError(type, message, ctx.canMint, undefined, !ctx.canMint);
  return new LakebaseAuthError(type, message, false);
}

/** Classifies a failed token request (client credentials, token exchange, or credential API). */
export function classifyTokenEndpointError(err: unknown, ctx: AuthContext): LakebaseAuthError {
  if (err instanceof LakebaseAuthError) return err;
  const { status, error, error_description: description, headers } = httpErrorShape(err);
  const text = `${error ?? ''} ${description ?? ''} ${(err as Error)?.message ?? ''}`;
  if (/TOKEN_EXPIRED/.test(text)) return authError('LakebaseTokenExpired', ctx);
  if (/TOKEN_INVALID/.test(text)) return authError('LakebaseTokenInvalid', ctx);
  if (status === 429 || (status !== undefined && status >= 500)) {
    const wait = retryAfterMs(headers?.get('retry-after'));
    return new LakebaseAuthError(
      'LakebaseTokenEndpointUnavailable',
      `Databricks token endpoint answered HTTP ${status}${error ? ` ${error}` : ''} for profile "${ctx.profile}"; retrying${wait !== undefined ? ` after ${Math.ceil(wait / 1000)} s (Retry-After)` : ' with backoff'}`,
      true,
      wait,
    );
  }
  if (error === 'invalid_client' || error === 'unauthorized_client' || status === 401 || status === 403) {
    return authError('LakebaseAuthConfigError', ctx, [error, description].filter(Boolean).join(': ') || `HTTP ${status}`);
  }
  if (status === undefined) {
    // No HTTP answer at all: DNS, refused connection, TLS, timeout. Transient from here.
    return new LakebaseAuthError(
      'LakebaseTokenEndpointUnavailable',
      `cannot reach the Databricks token endpoint for profile "${ctx.profile}": ${(err as Error)?.message ?? String(err)}`,
      true,
    );
  }
  return authError('LakebaseAuthConfigError', ctx, [`HTTP ${status}`, error, description].filter(Boolean).join(': '));
}

/**
 * A write refused on a connection that logged in with a READ_ONLY database credential (or whose
 * session is read-only for that reason). Keeps the server's SQLSTATE in `code` (25006, or 42501
 * when the role has no write grant), so SQL failure classification still calls it final.
 */
export class LakebaseReadOnlyCredentialError extends Error {
  override name = 'LakebaseReadOnlyCredentialError';
  readonly code: string;
  constructor(
    readonly pool: string,
    readonly tables: readonly string[],
    cause: Error & { code?: string },
  ) {
    const scope = tables.length ? `to read ${tables.join(', ')}` : 'to read only';
    const cannot = tables.length ? 'it cannot write, nor read other tables' : 'it cannot write';
    super(`${pool}: this connection logged in with a READ_ONLY database credential (requested ${scope}), so ${cannot}: ${cause.message}`, { cause });
    this.code = cause.code ?? '25006';
  }
}
