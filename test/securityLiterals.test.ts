import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { jobWorkflowId, workflowIdKey } from '../src/client/jobs';
import { quoteLiteral } from '../src/db/identifiers';
import { createTestDatabase, type TestDatabase } from './helpers/db';

describe('string literals in DDL mean the same text under any standard_conforming_strings (real PostgreSQL)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('seclit');
  });
  after(() => db?.close());

  for (const scs of ['on', 'off'])
    test(`standard_conforming_strings=${scs}: backslashes and quotes round-trip, nothing escapes the literal`, async () => {
      await db.client.query(`SET standard_conforming_strings = ${scs}`);
      for (const value of [String.raw`C:\temp\new`, String.raw`ends with \ `, String.raw`a\'; SELECT 1; --`, String.raw`\\`, "it's", 'plain'])
        assert.equal((await db.client.query<{ v: string }>(`SELECT ${quoteLiteral(value)} AS v`)).rows[0]!.v, value);
      await db.client.query('RESET standard_conforming_strings');
    });
});

describe('job workflow ids', () => {
  test('hash the parameters with an HMAC under a secret key: stable for one key, unguessable without it', () => {
    const params = { customer_id: 48213, amount: 250 };
    const unkeyed = createHash('sha256').update(JSON.stringify([['amount', 250], ['customer_id', 48213]])).digest('hex').slice(0, 12);
    const k1 = workflowIdKey({ LAKEBASE_WORKFLOW_ID_KEY: 'k1-0123456789abcdef' })!;
    const fromPayloadKey = workflowIdKey({ LAKEBASE_SECRET_KEYS: 'ab'.repeat(32) })!;
    const id = jobWorkflowId('pay', 'prod', params, k1);
    assert.match(id, /^job:pay:prod:[0-9a-f]{12}$/);
    assert.equal(jobWorkflowId('pay', 'prod', { amount: 250, customer_id: 48213 }, k1), id, 'stable, whatever the order');
    assert.notEqual(id.split(':')[3], unkeyed, 'the plain SHA-256 an attacker can recompute');
    assert.notEqual(jobWorkflowId('pay', 'prod', params, fromPayloadKey), id);
    assert.notEqual(jobWorkflowId('pay', 'prod', params, fromPayloadKey).split(':')[3], unkeyed);
  });
});
