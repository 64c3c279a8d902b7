import net from 'node:net';
import { readFileSync } from 'node:fs';
import type { DataConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { LAKEBASE_SEARCH_ATTRIBUTES } from './workflows/searchAttributes';
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
  // Failure messages and stack traces are encrypted too (they may quote row values); the worker's
  // workflow bundle carries the same converter (see workflowBundle in src/worker.ts).
  return t.encryptPayloads ? { payloadCodecs: [new EncryptionCodec(loadSealingKeys(env))], failureConverterPath: FAILURE_CONVERTER_PATH } : undefined;
}

/** The failure converter that encodes messages and stacks (src/codec/failureConverter.ts). */
export const FAILURE_CONVERTER_PATH = require.resolve('./codec/failureConverter');

/** Thrown when no Temporal server answers at the configured address. */
export class TemporalUnreachableError extends Error {
  override readonly name = 'TemporalUnreachableError';
  constructor(readonly address: string, readonly reason: string, options?: { cause?: unknown }) {
    super(
      `cannot reach Temporal at ${address} (${reason}). Start one (\`temporal server start-dev\`, or \`npm run demo\` for a local stack) or set temporal.address in the configuration`,
      options,
    );
  }
}

/** What a plain TCP connect to host:port says: the SDKs only report "deadline" or a Rust debug string. */
function tcpProbe(address: string): Promise<string | undefined> {
  const at = address.lastIndexOf(':');
  const host = at > 0 ? address.slice(0, at).replace(/^\[|\]$/g, '') : address;
  const port = at > 0 ? Number(address.slice(at + 1)) : 7233;
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('no answer within 3 s');
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ECONNREFUSED' ? 'connection refused: nothing listens there' : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? `host ${host} not found` : err.code ?? err.message),
    );
  });
}

/** Turns a failed Temporal connect (client or worker) into a TemporalUnreachableError when the address does not answer, else keeps the SDK error. */
export async function explainTemporalConnectError(address: string, err: unknown): Promise<Error> {
  const reason = await tcpProbe(address);
  if (reason) return new TemporalUnreachableError(address, reason, { cause: err });
  const e = err instanceof Error ? err : new Error(String(err));
  return new Error(`connecting to Temporal at ${address} failed: ${e.message.split('\n')[0]} (the port answers: check TLS / API key settings under temporal:)`, { cause: err });
}

/**
 * `connect()` until it succeeds, retrying for up to `waitMs` while the address does not answer
 * (the server is starting or restarting); other failures (TLS, API key) and the last refusal
 * reject at once, explained.
 */
export async function connectWhileUnreachable<C>(
  address: string,
  connect: () => Promise<C>,
  { waitMs, onWaiting, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) }: { waitMs: number; onWaiting: (reason: string, leftMs: number) => void; sleep?: (ms: number) => Promise<void> },
): Promise<C> {
  const deadline = Date.now() + waitMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await connect();
    } catch (err) {
      const explained = await explainTemporalConnectError(address, err);
      const left = deadline - Date.now();
      if (!(explained instanceof TemporalUnreachableError) || left <= 0) throw explained;
      onWaiting(explained.reason, left);
      await sleep(Math.min(delay, left));
    }
  }
}

type OperatorApi = Pick<temporal.api.operatorservice.v1.OperatorService, 'listSearchAttributes' | 'addSearchAttributes'>;

/**
 * Registers our search attributes on a namespace through the operator API (dev server,
 * self-hosted). Returns the names it added; throws where the namespace does not allow it
 * (e.g. Temporal Cloud answers PERMISSION_DENIED or UNIMPLEMENTED).
 */
export async function registerSearchAttributes(operator: OperatorApi, namespace: string): Promise<string[]> {
  const { customAttributes } = await operator.listSearchAttributes({ namespace });
  const missing = LAKEBASE_SEARCH_ATTRIBUTES.filter((k) => !(customAttributes ?? {})[k.name]);
  if (missing.length === 0) return [];
  const { IndexedValueType } = temporal.api.enums.v1;
  await operator.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, k.type === 'INT' ? IndexedValueType.INDEXED_VALUE_TYPE_INT : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  return missing.map((k) => k.name);
}

