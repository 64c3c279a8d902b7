import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
