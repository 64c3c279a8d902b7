import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Secrets that must travel through Temporal (a user's IdP token for on-behalf-of jobs) are sealed
 * with AES-256-GCM by the client and opened by the worker, so history holds only ciphertext.
 * Keys: LAKEBASE_SECRET_KEYS (comma-separated, base64 or hex, 32 bytes each; the first seals,
 * all open — for rotation) or LAKEBASE_SECRET_KEYS_FILE (one key per line).
 */

const PREFIX = 'lbsealed:v1';

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

export function isSealed(value: string): boolean {
  return value.startsWith(`${PREFIX}:`);
}

export function seal(plaintext: string, keys: SealingKey[]): string {
  const current = keys[0];
  if (!current) throw new SealingError('no sealing key: set LAKEBASE_SECRET_KEYS (the same on clients and workers) to pass IdP tokens to jobs');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', current.key, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${PREFIX}:${current.id}:${Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url')}`;
}

export function unseal(sealed: string, keys: SealingKey[]): string {
  const [p1, p2, id, data] = sealed.split(':');
  if (`${p1}:${p2}` !== PREFIX || !id || !data) throw new SealingError('not a sealed secret');
  const k = keys.find((x) => x.id === id);
  if (!k) throw new SealingError(`sealed with key ${id}, which this worker does not have; add it to LAKEBASE_SECRET_KEYS`);
  const raw = Buffer.from(data, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', k.key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  try {
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    throw new SealingError(`sealed secret failed authentication with key ${id} (corrupted or tampered)`);
  }
}
