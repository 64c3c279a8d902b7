import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseQualifiedName, quoteIdent, quoteTable } from '../src/db/identifiers';
import { classifySqlError } from '../src/db/errors';

describe('identifiers', () => {
  test('quotes names exactly, doubling embedded quotes', () => {
    assert.equal(quoteIdent('Order Lines'), '"Order Lines"');
    assert.equal(quoteIdent('a"b'), '"a""b"');
    assert.equal(quoteTable('x"; drop table x; --'), '"x""; drop table x; --"');
  });
  test('parses schema.table and quoted parts', () => {
    assert.deepEqual(parseQualifiedName('public.orders'), { schema: 'public', name: 'orders' });
    assert.deepEqual(parseQualifiedName('orders'), { name: 'orders' });
    assert.deepEqual(parseQualifiedName('"My Schema"."odd.name"'), { schema: 'My Schema', name: 'odd.name' });
    assert.deepEqual(parseQualifiedName('s."a""b"'), { schema: 's', name: 'a"b' });
  });
  test('rejects what PostgreSQL would mangle', () => {
    assert.throws(() => quoteIdent('x'.repeat(64)), /64 bytes; PostgreSQL allows at most 63/);
    assert.throws(() => quoteIdent('é'.repeat(32)), /64 bytes/);
    assert.doesNotThrow(() => quoteIdent('x'.repeat(63)));
    assert.throws(() => quoteIdent('a\0b'), /NUL/);
    assert.throws(() => parseQualifiedName('a.b.c'), /3 parts/);
    assert.throws(() => parseQualifiedName('"unterminated'), /unterminated quote/);
    assert.throws(() => parseQualifiedName('a..b'), /empty/);
  });
});

describe('SQL error classification', () => {
  const cls = (code: string) => classifySqlError(Object.assign(new Error('x'), { code }));
  test('transient states retry', () => {
    for (const code of ['08006', '08001', '53300', '57P01', '57P03', '40001', '40P01', 'ECONNRESET', 'ETIMEDOUT'])
      assert.deepEqual([code, cls(code).retryable, cls(code).type], [code, true, 'LakebaseTransientError']);
  });
  test('login failures take the token refresh path', () => {
    assert.equal(cls('28P01').type, 'LakebaseLoginFailed');
    assert.equal(cls('28000').kind, 'auth');
  });
  test('bad SQL, data and constraints do not retry', () => {
    assert.deepEqual([cls('42703').type, cls('42703').retryable], ['LakebaseSqlError', false]);
    assert.deepEqual([cls('22003').type, cls('22003').retryable], ['LakebaseDataError', false]);
    assert.deepEqual([cls('23505').type, cls('23505').retryable], ['LakebaseConstraintError', false]);
  });
  test('a dropped socket without a code is transient', () => {
    assert.equal(classifySqlError(new Error('Connection terminated unexpectedly')).retryable, true);
  });
});
