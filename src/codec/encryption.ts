import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { SealingKey } from '../auth/sealed';

const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const te = new TextEncoder();
const td = new TextDecoder();

/**
 * AES-256-GCM payload codec: every payload (inputs, results, heartbeats, failure details) is stored
 * in Temporal as ciphertext; the key id travels in the metadata so keys can rotate (the first key
 * encrypts, all decrypt).
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keys: SealingKey[]) {
    if (keys.length === 0) throw new Error('payload encryption needs a key: set LAKEBASE_SECRET_KEYS (or LAKEBASE_SECRET_KEYS_FILE)');
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys[0]!;
    return payloads.map((p) => {
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key.key, iv);
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: te.encode(ENCODING), [KEY_ID]: te.encode(key.id) }, data: new Uint8Array(data) };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (!p.metadata?.encoding || td.decode(p.metadata.encoding) !== ENCODING) return p;
      const id = p.metadata[KEY_ID] ? td.decode(p.metadata[KEY_ID]) : '';
      const key = this.keys.find((k) => k.id === id);
      if (!key) throw new Error(`payload encrypted with key ${id}, which is not among this process's keys (LAKEBASE_SECRET_KEYS)`);
      const raw = Buffer.from(p.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
