import { readFileSync } from 'node:fs';
import type { DataConverter } from '@temporalio/common';
import { loadSealingKeys } from './auth/sealed';
import { EncryptionCodec } from './codec/encryption';
import { readPem } from './config/pem';
import type { TemporalConfig } from './config/schema';

export interface TemporalConnectionOptions {
  address: string;
  tls?: { serverNameOverride?: string; serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } } | true;
  apiKey?: string;
}

const pem = (inline?: string, file?: string) => {
  const text = readPem(inline, file);
  return text === undefined ? undefined : Buffer.from(text);
};

/** Connection options for a self-hosted cluster, mTLS, or Temporal Cloud with an API key; the same for client and worker. */
export function temporalConnectionOptions(t: TemporalConfig): TemporalConnectionOptions {
  const apiKey = t.apiKey ?? (t.apiKeyFile ? readFileSync(t.apiKeyFile, 'utf8').trim() : undefined);
  if (!t.tls && !apiKey) return { address: t.address };
  const ca = pem(t.tls?.ca, t.tls?.caFile);
  const crt = pem(t.tls?.cert, t.tls?.certFile);
  const key = pem(t.tls?.key, t.tls?.keyFile);
  const tls =
    t.tls && (ca || crt || t.tls.serverName)
      ? { ...(t.tls.serverName && { serverNameOverride: t.tls.serverName }), ...(ca && { serverRootCACertificate: ca }), ...(crt && key && { clientCertPair: { crt, key } }) }
      : true;
  return { address: t.address, tls, ...(apiKey && { apiKey }) };
}

/** The payload codec chain: AES-256-GCM when `temporal.encryptPayloads` is on. */
export function dataConverterFor(t: TemporalConfig, env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  // Failure details are payloads and get encrypted; failure messages stay readable (they hold
  // statement names and SQLSTATEs, scrubbed of secrets by src/redact.ts, never rows).
  return t.encryptPayloads ? { payloadCodecs: [new EncryptionCodec(loadSealingKeys(env))] } : undefined;
}
