import type pg from 'pg';
import { parseQualifiedName, quoteIdent, quoteLiteral, quoteQualified, quoteTable } from './identifiers';

/**
 * How a full refresh puts its freshly loaded table in place of the target, inside the caller's
 * transaction, so readers see the old rows until the commit and the new ones after: never a half table.
 */

/** `<target>__lbw_refresh` next to the target: the table a full refresh loads into. */
export function refreshTableName(target: string): string {
  const q = parseQualifiedName(target);
  return quoteQualified({ schema: q.schema, name: `${q.name}__lbw_refresh` });
}

/**
 * A new, empty table shaped like the target: columns, NOT NULL, CHECKs, defaults, generated and
 * identity columns, storage and comments, but no indexes, so the load writes each row once and
 * indexes are built in one pass afterwards (as pg_dump does).
 */
export async function createRefreshTable(c: pg.ClientBase, target: string): Promise<string> {
  const refresh = refreshTableName(target);
  await c.query(`DROP TABLE IF EXISTS ${refresh}`);
  await c.query(`CREATE TABLE ${refresh} (LIKE ${quoteTable(target)} INCLUDING ALL EXCLUDING INDEXES)`);
  return refresh;
}

/**
 * What would be lost or broken if the target were dropped and the refresh table renamed in its
 * place; empty when a rename swap keeps everything (indexes, constraints, grants, owner, comment).
 */
export async function renameSwapBlockers(c: pg.ClientBase, target: string): Promise<string[]> {
  const { rows } = await c.query<{ reason: string }>(
    `WITH t AS (SELECT oid, relkind, relowner, relrowsecurity, relreplident FROM pg_class WHERE oid = $1::regclass)
     SELECT format('%s depends on it', pg_describe_object(d.classid, d.objid, d.objsubid)) AS reason
       FROM pg_depend d, t WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid AND d.deptype = 'n'
        -- its own constraints (rebuilt on the new table) are no obstacle; a foreign key to itself is
        AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = t.oid AND confrelid <> t.oid))
        AND NOT (d.classid = 'pg_statistic_ext'::regclass AND d.objid IN (SELECT oid FROM pg_statistic_ext WHERE stxrelid = t.oid))
     UNION ALL SELECT 'it is not a plain table' FROM t WHERE relkind <> 'r'
     UNION ALL SELECT 'it is owned by ' || pg_get_userbyid(relowner) || ', not by the worker''s user' FROM t WHERE relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
     UNION ALL SELECT 'row level security is enabled' FROM t WHERE relrowsecurity
     UNION ALL SELECT 'its replica identity is not the default' FROM t WHERE relreplident <> 'd'
     UNION ALL SELECT format('trigger %I fires on it', tgname) FROM pg_trigger, t WHERE tgrelid = t.oid AND NOT tgisinternal
     UNION ALL SELECT format('policy %I applies to it', polname) FROM pg_policy, t WHERE polrelid = t.oid
     UNION ALL SELECT 'it takes part in table inheritance' FROM pg_inherits, t WHERE inhrelid = t.oid OR inhparent = t.oid
     UNION ALL SELECT format('publication %I includes it', p.pubname) FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid, t WHERE r.prrelid = t.oid
     UNION ALL SELECT format('sequence %s belongs to its column %I', s.oid::regclass, a.attname)
       FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid, t
      WHERE d.refobjid = t.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
     UNION ALL SELECT format('column %I has its own grants', attname) FROM pg_attribute, t WHERE attrelid = t.oid AND attacl IS NOT NULL AND NOT attisdropped`,
    [quoteTable(target)],
  );
  return rows.map((r) => r.reason);
}

interface Definition {
  oid: number;
  schema: string;
  comment: string | null;
  /** Index-backed constraints (primary key, unique, exclusion) and foreign keys, in that order. */
  constraints: { name: string; type: string; def: string }[];
  /** Indexes that back no constraint: their CREATE INDEX statement, and the two names in it. */
  indexes: { name: string; def: string; quotedName: string; qualifiedTable: string }[];
  grants: { grantee: string | null; privilege: string; grantable: boolean }[];
}

async function definition(c: pg.ClientBase, target: string): Promise<Definition> {
  const oid = quoteTable(target);
  const head = await c.query<{ oid: number; schema: string; comment: string | null }>(
    `SELECT c.oid, n.nspname AS schema, obj_description(c.oid, 'pg_class') AS comment FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`,
    [oid],
  );
  const constraints = await c.query<{ name: string; type: string; def: string }>(
    `SELECT conname AS name, contype AS type, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x', 'f') ORDER BY contype = 'f', contype <> 'p', conname`,
    [oid],
  );
  // PostgreSQL's own quoting, to recognise the names in pg_get_indexdef's text.
  const indexes = await c.query<{ name: string; def: string; quoted_name: string; qualified_table: string }>(
    `SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def, quote_ident(ic.relname) AS quoted_name,
            quote_ident(n.nspname) || '.' || quote_ident(tc.relname) AS qualified_table
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace n ON n.oid = tc.relnamespace
      WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
      ORDER BY ic.relname`,
    [oid],
  );
  const grants = await c.query<{ grantee: string | null; privilege: string; grantable: boolean }>(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable
       FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> c.relowner`,
    [oid],
  );
  const h = head.rows[0]!;
  return {
    oid: h.oid,
    schema: h.schema,
    comment: h.comment,
    constraints: constraints.rows,
    indexes: indexes.rows.map((r) => ({ name: r.name, def: r.def, quotedName: r.quoted_name, qualifiedTable: r.qualified_table })),
    grants: grants.rows,
  };
}

/**
 * Builds the target's indexes and constraints on the loaded refresh table, then (holding the
 * target's ACCESS EXCLUSIVE lock only for the renames) drops the target and renames the refresh
 * table and its indexes into place, with the target's grants and comment. Returns false, changing
 * nothing of the target, when something depends on the target after all (checked under the lock).
 */
export async function renameSwap(c: pg.ClientBase, target: string): Promise<{ swapped: true } | { swapped: false; blockers: string[] }> {
  const refresh = refreshTableName(target);
  const def = await definition(c, target);
  const temp = (i: number) => `lbw_${def.oid}_${i}`;
  const renames: { from: string; to: string }[] = [];
  let n = 0;
  for (const k of def.constraints) {
    if (k.type === 'f') {
      await c.query(`ALTER TABLE ${refresh} ADD CONSTRAINT ${quoteIdent(k.name)} ${k.def}`);
      continue;
    }
    const name = temp(n++);
    await c.query(`ALTER TABLE ${refresh} ADD CONSTRAINT ${quoteIdent(name)} ${k.def}`);
    renames.push({ from: name, to: k.name });
  }
  for (const ix of def.indexes) {
    const m = /^CREATE (UNIQUE )?INDEX (\S+|"(?:[^"]|"")+") ON (ONLY )?(.+?) USING /.exec(ix.def);
    if (!m || m[2] !== ix.quotedName || m[4] !== ix.qualifiedTable) return { swapped: false, blockers: [`index ${ix.name} has a definition the worker cannot rebuild: ${ix.def}`] };
    const name = temp(n++);
    await c.query(`CREATE ${m[1] ?? ''}INDEX ${quoteIdent(name)} ON ${refresh} ${ix.def.slice(m[0].length - 'USING '.length)}`);
    renames.push({ from: name, to: ix.name });
  }
  await c.query(`LOCK TABLE ${quoteTable(target)} IN ACCESS EXCLUSIVE MODE`);
  const blockers = await renameSwapBlockers(c, target);
  if (blockers.length) return { swapped: false, blockers };
  for (const g of def.grants)
    await c.query(`GRANT ${g.privilege} ON ${refresh} TO ${g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`);
  if (def.comment !== null) await c.query(`COMMENT ON TABLE ${refresh} IS ${quoteLiteral(def.comment)}`);
  await c.query(`DROP TABLE ${quoteTable(target)}`);
  await c.query(`ALTER TABLE ${refresh} RENAME TO ${quoteIdent(parseQualifiedName(target).name)}`);
  for (const r of renames) await c.query(`ALTER INDEX ${quoteIdent(def.schema)}.${quoteIdent(r.from)} RENAME TO ${quoteIdent(r.to)}`);
  return { swapped: true };
}

/**
 * The swap for targets that others depend on (views, foreign keys, triggers, grants on columns…):
 * the target keeps its identity and its rows are replaced, under an ACCESS EXCLUSIVE lock.
 */
export async function truncateSwap(c: pg.ClientBase, target: string, columns: string[]): Promise<number> {
  const refresh = refreshTableName(target);
  const cols = columns.map((col) => quoteIdent(col)).join(', ');
  await c.query(`LOCK TABLE ${quoteTable(target)} IN ACCESS EXCLUSIVE MODE`);
  await c.query(`TRUNCATE ${quoteTable(target)}`);
  // OVERRIDING SYSTEM VALUE: identity columns keep the source's values, as the load did.
  const rows = (await c.query(`INSERT INTO ${quoteTable(target)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${refresh}`)).rowCount ?? 0;
  await c.query(`DROP TABLE ${refresh}`);
  return rows;
}

/** Readers go on, writers wait until the transaction ends (a first load checks the target stays empty). */
export async function blockWriters(c: pg.ClientBase, table: string): Promise<void> {
  await c.query(`LOCK TABLE ${quoteTable(table)} IN EXCLUSIVE MODE`);
}

export async function dropRefreshTable(c: pg.ClientBase, target: string): Promise<void> {
  await c.query(`DROP TABLE IF EXISTS ${refreshTableName(target)}`);
}
