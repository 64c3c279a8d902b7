import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Two kinds of key live here, never the same one:
 *
 * - Payload keys (LAKEBASE_SECRET_KEYS, symmetric AES-256-GCM): the payload codec, held by workers,
 *   the codec server and clients that read history (`SealingKey`, `loadSealingKeys`).
 * - Seal keys (X25519): a user's IdP token travels through Temporal sealed to the workers' public
 *   key (LAKEBASE_SEAL_PUBLIC_KEY, on clients); only workers hold the private half
 *   (LAKEBASE_SEAL_PRIVATE_KEYS). A client that finds a sealed token in history cannot open it, and
 *   the sealed blob names the workflow id and the job/pipeline it was made for (as AEAD associated
 *   data), so it opens nowhere else.
 */


export interface SealingKey {
  id: string;
  key: Buffer;
}

export class SealingError extends Error {
  override name = 'SealingError';
}

function decodeKey(text: string, where: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32) throw new SealingError(`${where}: each key must be 32 bytes (64 hex characters or 44 base64 characters), got ${key.length} bytes`);
  return key;
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export function loadSealingKeys(env: NodeJS.ProcessEnv = process.env): SealingKey[] {
  let texts: string[] = [];
  let where = 'LAKEBASE_SECRET_KEYS';
  if (env.LAKEBASE_SECRET_KEYS) texts = env.LAKEBASE_SECRET_KEYS.split(',');
  else if (env.LAKEBASE_SECRET_KEYS_FILE) {
    where = `LAKEBASE_SECRET_KEYS_FILE (${env.LAKEBASE_SECRET_KEYS_FILE})`;
    texts = readFileSync(env.LAKEBASE_SECRET_KEYS_FILE, 'utf8').split(/\r?\n/);
  }
  return texts.filter((t) => t.trim()).map((t) => {
    const key = decodeKey(t, where);
    return { id: keyId(key), key };
  });
}


const SEAL_PREFIX = 'lbsealed:v2';
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** What a sealed token is for: the workflow id, and `job:<name>`, `pipeline:<name>` or `connection:<profile>/<env>`. */
export interface SealBinding {
  workflowId: string;
  scope: string;
}

export interface SealPublicKey {
  id: string;
  key: KeyObject;
}

export interface SealPrivateKey extends SealPublicKey {
  privateKey: KeyObject;
}

function rawX25519Public(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

function sealKeyId(pub: KeyObject): string {
  return createHash('sha256').update(rawX25519Public(pub)).digest('hex').slice(0, 8);
}

function parseX25519(text: string, kind: 'public' | 'private', where: string): KeyObject {
  const t = text.trim();
  try {
    if (t.includes('-----BEGIN')) return kind === 'public' ? createPublicKey(t) : createPrivateKey(t);
    const raw = Buffer.from(t, 'base64');
    if (raw.length !== 32) throw new Error(`expected 32 bytes, got ${raw.length}`);
    return kind === 'public'
      ? createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' })
      : createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new SealingError(`${where}: not an X25519 ${kind} key (PEM, or 32 bytes in base64): ${(err as Error).message}`);
  }
}

/** A new seal key pair, both halves as base64 of their 32 raw bytes (`lakebase-worker` docs: security.md). */
export function generateSealKeyPair(): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { publicKey: rawX25519Public(publicKey).toString('base64'), privateKey: der.subarray(der.length - 32).toString('base64') };
}

/** PEM blocks (openssl genpkey -algorithm x25519), else base64 keys separated by commas or lines. */
function splitKeys(text: string): string[] {
  if (text.includes('-----BEGIN')) return text.match(/-----BEGIN [^-]+-----[\s\S]+?-----END [^-]+-----/g) ?? [];
  return text.split(/\r?\n|,/);
}

function listed(env: NodeJS.ProcessEnv, name: string): { texts: string[]; where: string } {
  if (env[name]) return { texts: splitKeys(env[name]!), where: name };
  const file = env[`${name}_FILE`];
  if (file) return { texts: splitKeys(readFileSync(file, 'utf8')), where: `${name}_FILE (${file})` };
  return { texts: [], where: name };
}

/** Workers: LAKEBASE_SEAL_PRIVATE_KEYS (comma-separated) or LAKEBASE_SEAL_PRIVATE_KEYS_FILE; every key opens (rotation). */
export function loadSealPrivateKeys(env: NodeJS.ProcessEnv = process.env): SealPrivateKey[] {
  const { texts, where } = listed(env, 'LAKEBASE_SEAL_PRIVATE_KEYS');
  return texts.filter((t) => t.trim()).map((t) => {
    const privateKey = parseX25519(t, 'private', where);
    const key = createPublicKey(privateKey);
    return { id: sealKeyId(key), key, privateKey };
  });
}

/** Clients: LAKEBASE_SEAL_PUBLIC_KEY (or _FILE), the public half of the workers' current seal key. */
export function loadSealPublicKey(env: NodeJS.ProcessEnv = process.env): SealPublicKey {
  const { texts, where } = listed(env, 'LAKEBASE_SEAL_PUBLIC_KEY');
  const text = texts.find((t) => t.trim());
  if (!text) throw new SealingError('no seal key: set LAKEBASE_SEAL_PUBLIC_KEY (the public half of the workers\' LAKEBASE_SEAL_PRIVATE_KEYS) to pass IdP tokens to jobs');
  const key = parseX25519(text, 'public', where);
  return { id: sealKeyId(key), key };
}

function associatedData(id: string, b: SealBinding): Buffer {
  return Buffer.from([SEAL_PREFIX, id, b.workflowId, b.scope].join('\0'), 'utf8');
}

function aeadKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), 'lakebase-worker sealed idp token v2', 32));
}

export function isSealed(value: string): boolean {
  return value.startsWith('lbsealed:');
}

/** Seals `plaintext` to the workers' public key, for one workflow and one job/pipeline only. */
export function seal(plaintext: string, to: SealPublicKey, binding: SealBinding): string {
  const eph = generateKeyPairSync('x25519');
  const ephRaw = rawX25519Public(eph.publicKey);
  const key = aeadKey(diffieHellman({ privateKey: eph.privateKey, publicKey: to.key }), ephRaw, rawX25519Public(to.key));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData(to.id, binding));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const scope = Buffer.from(binding.scope, 'utf8').toString('base64url');
  return `${SEAL_PREFIX}:${to.id}:${scope}:${Buffer.concat([ephRaw, iv, ct, cipher.getAuthTag()]).toString('base64url')}`;
}

/** The scope a sealed token names (not secret; authenticated when it is opened). */
export function sealedScope(sealed: string): string | undefined {
  const parts = sealed.split(':');
  return parts.length === 5 && `${parts[0]}:${parts[1]}` === SEAL_PREFIX ? Buffer.from(parts[3]!, 'base64url').toString('utf8') : undefined;
}

/**
 * Opens a sealed token on a worker. `binding.workflowId` is the running workflow's (from the server,
 * never from the input); `binding.scope`, when the caller knows it, must be the one sealed.
 */
export function unseal(sealed: string, keys: SealPrivateKey[], binding: { workflowId: string; scope?: string }): string {
  if (sealed.startsWith('lbsealed:v1:'))
    throw new SealingError('sealed with a shared key (lbsealed:v1), which this release no longer opens: start the job again with a client that has LAKEBASE_SEAL_PUBLIC_KEY (docs/security.md, migration)');
  const [p1, p2, id, scopeText, data] = sealed.split(':');
  if (`${p1}:${p2}` !== SEAL_PREFIX || !id || scopeText === undefined || !data) throw new SealingError('not a sealed secret');
  const scope = Buffer.from(scopeText, 'base64url').toString('utf8');
  if (binding.scope !== undefined && binding.scope !== scope) throw new SealingError(`sealed for ${scope}, not for ${binding.scope}`);
  const k = keys.find((x) => x.id === id);
  if (!k) throw new SealingError(`sealed to seal key ${id}, which this worker does not have; add its private half to LAKEBASE_SEAL_PRIVATE_KEYS`);
  const raw = Buffer.from(data, 'base64url');
  if (raw.length < 32 + 12 + 16) throw new SealingError('sealed secret is truncated');
  const ephRaw = raw.subarray(0, 32);
  const eph = createPublicKey({ key: Buffer.concat([X25519_SPKI, ephRaw]), format: 'der', type: 'spki' });
  const key = aeadKey(diffieHellman({ privateKey: k.privateKey, publicKey: eph }), ephRaw, rawX25519Public(k.key));
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(32, 44));
  decipher.setAAD(associatedData(id, { workflowId: binding.workflowId, scope }));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  try {
    return Buffer.concat([decipher.update(raw.subarray(44, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    throw new SealingError(`sealed secret does not open for workflow ${binding.workflowId} (${scope}): sealed for another workflow, or tampered with`);
  }
}
