import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { relayCopy } from '../src/db/copyFrames';
import { relationChecksum } from '../src/db/checksum';
import { createTestDatabase, type TestDatabase } from './helpers/db';

// The unparsed COPY relay (src/db/copyFrames.ts) between two real databases: what it moves must be
// what the source has, whatever the rows hold or the server sends in between, and a failure on
// either side must leave the target as it was.

describe('COPY relayed as CopyData frames', () => {
  let src: TestDatabase;
  let dst: TestDatabase;

  before(async () => {
    src = await createTestDatabase('frames_src');
    dst = await createTestDatabase('frames_dst');
    await src.client.query(`
      CREATE TABLE t (id int PRIMARY KEY, v text, b bytea, n numeric);
      -- Rows of every width: empty, NULL, tabs, newlines, backslashes, multi-byte, and values larger
      -- than a socket read (300 kB of hex), so rows and message headers are cut across reads.
      INSERT INTO t SELECT g,
        CASE g % 7 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'tab\\there\\nnew line \\\\ back' WHEN 3 THEN 'zoë 漢字 😀' ELSE md5(g::text) END,
        CASE WHEN g % 500 = 0 THEN decode(repeat('ab', 150000), 'hex') ELSE decode(md5(g::text), 'hex') END,
        g * 1.5
      FROM generate_series(1, 20000) g;
      CREATE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN IF i % 1000 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$;
    `);
  });

  after(async () => {
    await src?.close();
    await dst?.close();
  });

  async function fresh(): Promise<void> {
    await dst.client.query(`DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, v text, b bytea, n numeric)`);
  }

  const alive = async (c: pg.Client) => assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1);

  test('moves every row as the source has it; counts rows, keeps the last one, and skips the NOTICEs the server sends in between', async () => {
    await fresh();
    const r = await relayCopy(src.client, dst.client, `COPY (SELECT noisy(id) AS id, v, b, n FROM t ORDER BY id) TO STDOUT`, 'COPY t (id, v, b, n) FROM STDIN');
    assert.equal(r.rows, 20000);
    assert.equal(r.written, 20000);
    assert.ok(r.bytes > 40 * 300_000, `bytes ${r.bytes}`);
    assert.deepEqual(r.lastRow()?.[0], '20000');
    assert.deepEqual(await relationChecksum(dst.client, 't', ['id', 'v', 'b', 'n'], ['id']), await relationChecksum(src.client, 't', ['id', 'v', 'b', 'n'], ['id']));
    // The NOTICEs (one per 1,000 rows) came between the rows: not forwarded (the target would take them for data), as pg-copy-streams drops them too.
    await alive(src.client);
    await alive(dst.client);
  });

  test('the last row is whole when it spans socket reads, and an empty result is 0 rows', async () => {
    await fresh();
    const r = await relayCopy(src.client, dst.client, `COPY (SELECT * FROM t WHERE id <= 500 ORDER BY id) TO STDOUT`, 'COPY t (id, v, b, n) FROM STDIN');
    assert.equal(r.rows, 500);
    const last = r.lastRow()!;
    assert.equal(last[0], '500');
    assert.equal(String(last[2]).length, 2 + 150_000 * 2, 'the 150 kB bytea of row 500, as 300 kB of hex');
    const none = await relayCopy(src.client, dst.client, `COPY (SELECT * FROM t WHERE false) TO STDOUT`, 'COPY t (id, v, b, n) FROM STDIN');
    assert.equal(none.rows, 0);
    assert.equal(none.lastRow(), undefined);
  });

  test('a source that fails mid-copy fails the relay with its error, and the target keeps nothing of it', async () => {
    await fresh();
    await assert.rejects(
      relayCopy(src.client, dst.client, `COPY (SELECT id, v, b, 1 / (id - 15000) AS n FROM t ORDER BY id) TO STDOUT`, 'COPY t (id, v, b, n) FROM STDIN'),
      (err: Error & { code?: string }) => err.code === '22012' && /division by zero/.test(err.message),
    );
    assert.equal((await dst.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 0);
    await alive(src.client);
    await alive(dst.client);
  });

  test('a target that refuses a row fails the relay with its error (23505), nothing kept', async () => {
    await fresh();
    await dst.client.query(`INSERT INTO t (id) VALUES (12345)`);
    const s = new pg.Client({ connectionString: src.url });
    await s.connect();
    await assert.rejects(relayCopy(s, dst.client, `COPY (SELECT * FROM t ORDER BY id) TO STDOUT`, 'COPY t (id, v, b, n) FROM STDIN'), (err: Error & { code?: string }) => err.code === '23505');
    // The source is mid-COPY when the target fails: its connection is given up, as the engine does.
    await s.end().catch(() => undefined);
    assert.equal((await dst.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1);
    await alive(dst.client);
  });

  test('an abort mid-copy rolls the target back and frees its connection', async () => {
    await fresh();
    const s = new pg.Client({ connectionString: src.url });
    await s.connect();
    const abort = new AbortController();
    let seen = 0;
    const relay = relayCopy(s, dst.client, `COPY (SELECT * FROM t ORDER BY id) TO STDOUT`, 'COPY t (id, v, b, n) FROM STDIN', {
      signal: abort.signal,
      onProgress: (rows) => void (seen = rows),
    });
    setTimeout(() => abort.abort(), 30);
    await assert.rejects(relay, (err: Error) => err.name === 'AbortError');
    await s.end().catch(() => undefined);
    assert.equal((await dst.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 0, `nothing kept (had seen ${seen} rows)`);
    await alive(dst.client);
  });
});
