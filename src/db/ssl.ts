import type { ConnectionOptions } from 'node:tls';
import { readPem as pem } from '../config/pem';
import type { EnvironmentConfig } from '../config/schema';

type Ssl = EnvironmentConfig['ssl'];

/** libpq sslmode semantics mapped onto Node's TLS options. */
export function tlsOptionsFor(ssl: Ssl): false | ConnectionOptions {
  if (ssl.mode === 'disable') return false;
  const ca = pem(ssl.ca, ssl.caFile);
  const cert = pem(ssl.cert, ssl.certFile);
  const key = pem(ssl.key, ssl.keyFile);
  const base: ConnectionOptions = { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
  switch (ssl.mode) {
    case 'require':
      // As libpq: require with a root CA verifies the chain (verify-ca); without one it only encrypts.
      return ca ? { ...base, rejectUnauthorized: true, checkServerIdentity: () => undefined } : { ...base, rejectUnauthorized: false };
    case 'verify-ca':
      return { ...base, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ...base, rejectUnauthorized: true };
  }
}
