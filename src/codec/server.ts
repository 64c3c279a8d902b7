import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { z } from 'zod';
import type { PayloadCodec } from '@temporalio/common';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Browser origins allowed to call it (the Temporal UI's). */
  origins: string[];
  /** Requests must carry `Authorization: Bearer <token>`: at least 32 bytes, surrounding whitespace ignored. */
  token: string;
  /** Bodies above this are refused with 413 (default 8 MiB: a 4 MB gRPC message, base64 in JSON). */
  maxBodyBytes?: number;
}

/** The shortest codec token accepted: anything shorter can be guessed from the network. */
export const MIN_CODEC_TOKEN_BYTES = 32;

/** The token as the server will compare it, or an error saying why it is refused. */
export function codecToken(raw: string): string {
  const token = raw.trim();
  if (Buffer.byteLength(token) < MIN_CODEC_TOKEN_BYTES)
    throw new Error(`the codec token must be at least ${MIN_CODEC_TOKEN_BYTES} bytes (got ${Buffer.byteLength(token)}); make one with: openssl rand -hex 32`);
  return token;
}

// The JSON shape the Temporal UI and CLI send: payloads with base64 metadata values and data.
const body = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), z.string()).optional(), data: z.string().optional() })),
});

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

function authorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** `/encode` and `/decode` for the Temporal UI and CLI, with CORS for the UI and a bearer-token check. */
export function createCodecServer({ codec, origins, token: rawToken, maxBodyBytes = 8 * 1024 * 1024 }: CodecServerOptions): http.Server {
  const token = codecToken(rawToken);
  return http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin && origins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'content-type, x-namespace, authorization');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'POST' || (path !== '/encode' && path !== '/decode')) return void res.writeHead(404).end();
    if (!authorized(req.headers.authorization, token)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: 'unauthorized: send Authorization: Bearer <codec token>' }));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(req.headers['content-length'] ?? 0) > maxBodyBytes;
    const refuseLarge = () => {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: `body larger than ${maxBodyBytes} bytes` }));
      req.resume();
    };
    if (tooLarge) return refuseLarge();
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > maxBodyBytes) {
        tooLarge = true;
        chunks.length = 0;
        return refuseLarge();
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) return;
      void (async () => {
        let parsed: z.infer<typeof body>;
        try {
          parsed = body.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          res.writeHead(400, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ error: 'expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}' }));
        }
        try {
          const payloads = parsed.payloads.map((p) => ({
            metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, unb64(v)])),
            data: unb64(p.data ?? ''),
          }));
          const out = path === '/encode' ? await codec.encode(payloads) : await codec.decode(payloads);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ payloads: out.map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])), data: b64(p.data ?? new Uint8Array()) })) }));
        } catch (err) {
          res.writeHead(422, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: (err as Error).message }));
        }
      })();
    });
  });
}
