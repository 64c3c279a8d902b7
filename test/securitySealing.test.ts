import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateSealKeyPair, loadSealingKeys, loadSealPrivateKeys, loadSealPublicKey, seal, unseal } from '../src/auth/sealed';

describe('IdP tokens sealed to the workers (X25519 + AES-256-GCM, bound to a workflow and a job or pipeline)', () => {
  const current = generateSealKeyPair();
  const binding = { workflowId: 'job:refresh:prod:abc', scope: 'job:refresh' };
  // A CLI user's environment: the workers' public seal key and the payload keys, no private seal key.
  const clientEnv = { LAKEBASE_SEAL_PUBLIC_KEY: current.publicKey, LAKEBASE_SECRET_KEYS: randomBytes(32).toString('hex') };

  test('a client cannot unseal: its keys (public seal key, payload keys) open nothing; the worker opens it', () => {
    const sealed = seal('eyJ.alice.jwt', loadSealPublicKey(clientEnv), binding);
    assert.ok(!sealed.includes('alice'));
    assert.deepEqual(loadSealPrivateKeys(clientEnv), []);
    assert.throws(() => unseal(sealed, loadSealPrivateKeys(clientEnv), binding), /does not have/);
    assert.equal(loadSealingKeys(clientEnv).length, 1, 'the client does hold a payload key');
    assert.equal(unseal(sealed, loadSealPrivateKeys({ LAKEBASE_SEAL_PRIVATE_KEYS: current.privateKey }), binding), 'eyJ.alice.jwt');
  });

  test('a sealed token opens only for its workflow and its scope; after rotation, old and new keys both open', () => {
    const next = generateSealKeyPair();
    const workers = loadSealPrivateKeys({ LAKEBASE_SEAL_PRIVATE_KEYS: `${next.privateKey},${current.privateKey}` });
    const old = seal('t1', loadSealPublicKey(clientEnv), binding);
    const fresh = seal('t2', loadSealPublicKey({ LAKEBASE_SEAL_PUBLIC_KEY: next.publicKey }), binding);
    assert.equal(unseal(old, workers, binding), 't1');
    assert.equal(unseal(fresh, workers, binding), 't2');
    assert.throws(() => unseal(old, workers, { ...binding, workflowId: 'job:refresh:prod:other' }), /does not open for workflow job:refresh:prod:other/);
    assert.throws(() => unseal(old, workers, { ...binding, scope: 'job:drop-everything' }), /sealed for job:refresh, not for job:drop-everything/);
    // Rewriting the scope in the blob's header breaks its authentication.
    const [a, b, id, , data] = old.split(':');
    const forged = [a, b, id, Buffer.from('job:drop-everything').toString('base64url'), data].join(':');
    assert.throws(() => unseal(forged, workers, { ...binding, scope: 'job:drop-everything' }), /does not open/);
    assert.throws(() => unseal('lbsealed:v1:abcd:xyz', workers, binding), /no longer opens/);
  });
});
