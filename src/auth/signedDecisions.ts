import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/**
 * Who started or decided a job, proven by an Ed25519 signature the worker checks against the public
 * keys configured under `identities`. Anything else a client sends (a `--by` name, Temporal's
 * client identity) is self-asserted: every CLI user could claim to be an approver.
 */

export const signedStatementSchema = z.strictObject({
  /** The statement's JSON text exactly as signed (so no canonicalisation can differ). */
  statement: z.string().min(2).max(4096),
  /** Base64 Ed25519 signature of `statement`. */
  signature: z.string().min(1).max(200),
});
export type SignedStatement = z.infer<typeof signedStatementSchema>;

export const statementSchema = z.strictObject({
  v: z.literal(1),
  action: z.enum(['start', 'approve', 'reject']),
  /** The identity name the signer claims; the worker checks the signature with that name's key. */
  by: z.string().min(1),
  job: z.string().min(1),
  workflowId: z.string().min(1),
  /** approve/reject: the run decided on, so a decision cannot be replayed onto a later run. */
  runId: z.string().min(1).optional(),
  /** Epoch ms when signed: a start is accepted only near the run's start time. */
  at: z.number().int(),
  reason: z.string().max(2000).optional(),
});
export type Statement = z.infer<typeof statementSchema>;

export class SignatureError extends Error {
  override name = 'SignatureError';
}

/** An Ed25519 public key as PEM (SPKI) or as the 32 raw bytes in base64. */
export function publicKeyFrom(text: string, where: string): KeyObject {
  const t = text.trim();
  try {
    if (t.includes('-----BEGIN')) return createPublicKey(t);
    const raw = Buffer.from(t, 'base64');
    if (raw.length !== 32) throw new Error(`expected 32 bytes, got ${raw.length}`);
    // SPKI prefix of an Ed25519 key (RFC 8410), then the raw key.
    return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
  } catch (err) {
    throw new SignatureError(`${where}: not an Ed25519 public key (${(err as Error).message})`);
  }
}

/** The raw 32-byte public half, base64: what `identities.<name>.publicKey` holds. */
export function rawPublicKey(key: KeyObject): string {
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

export function privateKeyFrom(pem: string, where: string): KeyObject {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`);
    return key;
  } catch (err) {
    throw new SignatureError(`${where}: not an Ed25519 private key in PEM (${(err as Error).message}); make one with: openssl genpkey -algorithm ed25519`);
  }
}

/** The configured identity whose public key is the public half of `key`. */
export function identityOfKey(key: KeyObject, identities: Record<string, { publicKey: string }>): string | undefined {
  const mine = rawPublicKey(key);
  return Object.entries(identities).find(([name, i]) => rawPublicKey(publicKeyFrom(i.publicKey, `identities.${name}.publicKey`)) === mine)?.[0];
}

export function signStatement(statement: Statement, key: KeyObject): SignedStatement {
  const text = JSON.stringify(statementSchema.parse(statement));
  return { statement: text, signature: sign(null, Buffer.from(text, 'utf8'), key).toString('base64') };
}

/** The statement, once its signature verifies with the key of the identity it names. */
export function verifyStatement(signed: unknown, identities: Record<string, { publicKey: string }>): Statement {
  const s = signedStatementSchema.safeParse(signed);
  if (!s.success) throw new SignatureError('not a signed statement');
  let parsed: Statement;
  try {
    parsed = statementSchema.parse(JSON.parse(s.data.statement));
  } catch {
    throw new SignatureError('the signed statement is malformed');
  }
  const identity = identities[parsed.by];
  if (!identity) throw new SignatureError(`"${parsed.by}" is not a configured identity (identities in the worker's configuration)`);
  const ok = verify(null, Buffer.from(s.data.statement, 'utf8'), publicKeyFrom(identity.publicKey, `identities.${parsed.by}.publicKey`), Buffer.from(s.data.signature, 'base64'));
  if (!ok) throw new SignatureError(`the signature is not ${parsed.by}'s (identities.${parsed.by}.publicKey)`);
  return parsed;
}
