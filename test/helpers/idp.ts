import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

export interface IdpClient {
  clientId: string;
  /** `email` claim put into its tokens. */
  email?: string;
  /** Audience of its tokens (default "databricks"). */
  audience?: string;
  /** Lifetime of its tokens in seconds (default 600). */
  ttlSeconds?: number;
}

export interface TestIdp {
  issuer: string;
  /** A JWT access token issued by the real oidc-provider to this client (client credentials grant). */
  token(clientId: string): Promise<string>;
  stop(): Promise<void>;
}

const SECRET = 'idp-client-secret-for-tests';

/** A real OpenID provider (npm oidc-provider) issuing signed JWTs, as an IdP would for federation. */
export async function startIdp(clients: IdpClient[]): Promise<TestIdp> {
  const { default: Provider } = await import('oidc-provider');
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
  const byId = new Map(clients.map((c) => [c.clientId, c]));
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.clientId,
      client_secret: SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: [jwk] },
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:databricks',
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, _resource: string, client: { clientId: string }) => ({
          scope: 'all-apis',
          audience: byId.get(client.clientId)?.audience ?? 'databricks',
          accessTokenTTL: byId.get(client.clientId)?.ttlSeconds ?? 600,
          accessTokenFormat: 'jwt',
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => {
      const email = token.clientId ? byId.get(token.clientId)?.email : undefined;
      return email ? { email } : {};
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    async token(clientId) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'all-apis', resource: 'urn:databricks' }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`IdP refused a token for ${clientId}: ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
