import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTypeSql, DDL_SESSION_SETTINGS, escapeCatalogLiterals } from '../src/db/targetDdl';
import { typeDefinition, type TypeDefinition, type TypeInfo } from '../src/db/typeCatalog';
import { runDdl } from '../src/sync/createTarget';
import { createTestDatabase, type TestDatabase } from './helpers/db';

// Catalog text (a domain's DEFAULT and CHECK) goes into target DDL: it must mean on the target what
// it meant in the source, whatever the target session's standard_conforming_strings.
describe('target DDL from catalog text (issue 30 item 10)', () => {
  let db: TestDatabase;
  let def: TypeDefinition;

  before(async () => {
    db = await createTestDatabase('secddl');
    await db.client.query(`CREATE SCHEMA src; CREATE SCHEMA dst`);
    // Made as the source would be (standard_conforming_strings on, the default): a backslash and a quote in both.
    await db.client.query(`CREATE DOMAIN src.d AS text DEFAULT 'a\\b''c' CONSTRAINT not_x CHECK (VALUE <> 'x\\' AND VALUE <> $q$y'$q$)`);
    const oid = Number((await db.client.query(`SELECT 'src.d'::regtype::oid AS oid`)).rows[0].oid);
    const type: TypeInfo = { formatted: 'src.d', isArray: false, modifier: '', base: { oid, schema: 'src', name: 'd', kind: 'd', relkind: null, extension: null } };
    def = (await typeDefinition(db.client, type))!;
    assert.equal(def.kind, 'domain');
  });
  after(() => db?.close());

  async function behaviour(schema: string): Promise<{ dflt: string; refused: string[] }> {
    await db.client.query(`CREATE TEMP TABLE probe_${schema} (v ${schema}.d); INSERT INTO probe_${schema} DEFAULT VALUES`);
    const dflt = (await db.client.query(`SELECT v FROM probe_${schema}`)).rows[0].v as string;
    const refused: string[] = [];
    for (const v of ['x\\', "y'", 'ok']) if (await db.client.query(`SELECT $1::${schema}.d`, [v]).then(() => false, () => true)) refused.push(v);
    return { dflt, refused };
  }

  test('under standard_conforming_strings = off the copied domain still means the same; pasted raw it does not', async () => {
    const want = await behaviour('src');
    assert.deepEqual(want, { dflt: "a\\b'c", refused: ['x\\', "y'"] });
    const sql = createTypeSql('dst', 'd', def, () => 'text');
    assert.match(sql, /E'/, sql);
    await db.client.query('SET standard_conforming_strings = off; SET escape_string_warning = off');
    try {
      await db.client.query(sql);
      // The raw text, as before: read under `off` it is another expression, or none at all.
      const raw = sql.replace(/^CREATE DOMAIN "dst"/, 'CREATE DOMAIN "raw"').replace(/E'((?:[^']|'')*)'/g, (_, body: string) => `'${body.replace(/\\\\/g, '\\')}'`);
      await db.client.query('CREATE SCHEMA raw');
      const rawResult = await db.client.query(raw).then(() => behaviour('raw'), (err: Error) => err);
      assert.ok(rawResult instanceof Error || JSON.stringify(rawResult) !== JSON.stringify(want), `raw catalog text meant the same: ${raw}`);
    } finally {
      await db.client.query('SET standard_conforming_strings = on');
    }
    assert.deepEqual(await behaviour('dst'), want);
    assert.deepEqual(DDL_SESSION_SETTINGS, ['SET LOCAL standard_conforming_strings = on']);
  });

  test('a source session under standard_conforming_strings = off reads the same definition', async () => {
    // The catalog deparses in the reading session's quoting: 'a\\b' there means a\b, and must not become two backslashes.
    const oid = Number((await db.client.query(`SELECT 'src.d'::regtype::oid AS oid`)).rows[0].oid);
    const type: TypeInfo = { formatted: 'src.d', isArray: false, modifier: '', base: { oid, schema: 'src', name: 'd', kind: 'd', relkind: null, extension: null } };
    await db.client.query('SET standard_conforming_strings = off; SET escape_string_warning = off');
    let offDef: TypeDefinition;
    try {
      offDef = (await typeDefinition(db.client, type))!;
    } finally {
      await db.client.query('SET standard_conforming_strings = on');
    }
    await db.client.query('CREATE SCHEMA dst_off');
    await db.client.query(createTypeSql('dst_off', 'd', offDef, () => 'text'));
    assert.deepEqual(await behaviour('dst_off'), { dflt: "a\\b'c", refused: ['x\\', "y'"] });
  });

  test('runDdl sets standard_conforming_strings for its transaction, whatever the session had', async () => {
    await db.client.query('SET standard_conforming_strings = off; SET escape_string_warning = off');
    try {
      await db.client.query('BEGIN');
      await runDdl(db.client, [{ sql: `CREATE TABLE dst.scs AS SELECT current_setting('standard_conforming_strings') AS v` }], 'p');
      await db.client.query('COMMIT');
      assert.equal((await db.client.query(`SELECT v FROM dst.scs`)).rows[0].v, 'on');
      assert.equal((await db.client.query(`SHOW standard_conforming_strings`)).rows[0].standard_conforming_strings, 'off', 'the session keeps its own setting after');
    } finally {
      await db.client.query('SET standard_conforming_strings = on');
    }
  });

  test('domainConstraints: false copies neither DEFAULT nor CHECK', () => {
    const sql = createTypeSql('dst', 'd2', def, () => 'text', { domainConstraints: false });
    assert.equal(sql, 'CREATE DOMAIN "dst"."d2" AS text');
  });

  test('the rewrite keeps what is not a standard string, and refuses unterminated quoting', () => {
    assert.equal(escapeCatalogLiterals(`'a\\b' || E'c\\\\' || "q""\\"  || $t$\\$t$ || 'plain' -- 'x\\'`), `E'a\\\\b' || E'c\\\\' || "q""\\"  || $t$\\$t$ || 'plain' -- 'x\\'`);
    assert.throws(() => escapeCatalogLiterals(`'open`), /unterminated/);
    assert.throws(() => escapeCatalogLiterals(`$a$ never closed`), /unterminated/);
  });
});
