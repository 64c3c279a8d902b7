import type pg from 'pg';
import { z } from 'zod';
import type { PipelineConfig } from '../config/schema';
import { parseQualifiedName, quoteIdent, quoteTable } from './identifiers';
import { RAW_TEXT } from './rawText';
import { escapeCatalogLiterals } from './targetDdl';
import { sourceRelation, type ColumnPlan } from './syncSql';

/**
 * Catalog queries about column types, for creating and evolving targets: what the source's output
 * columns are (exactly, with typmods), how its user-defined types are defined, and what the target
 * database already has. Each function is one statement (or one per type it is asked about).
 */

/** An output column as the source describes it without reading a row (RowDescription). */
export interface WireColumn {
  name: string;
  /** Type oid and typmod as sent on the wire: a domain arrives as its base type. */
  oid: number;
  typmod: number;
  /** The table column it comes from unchanged (0 for expressions): its catalog entry has the exact type. */
  tableId: number;
  columnId: number;
  /**
   * The table column's collation as SQL (`"C"`, `"public"."german"`); null for the database
   * default or a type without collations; undefined for an expression (not traced to a column).
   */
  collation?: string | null;
}

/** A type as one database names it: enough to name it in another database, or to create it there. */
export interface TypeInfo {
  /** format_type(oid, typmod) in the database asked, e.g. `numeric(12,2)`, `text[]`, `geometry(Point,4326)`. */
  formatted: string;
  isArray: boolean;
  /** The type itself, or an array's element type. */
  base: { oid: number; schema: string; name: string; kind: string; relkind: string | null; extension: { name: string; schema: string } | null };
  /** The typmod as text after the base type's name, e.g. `(Point,4326)`; empty when none. */
  modifier: string;
}

/** A source output column with its exact type; `notNull` only for plain columns of a table source. */
export interface SourceColumn {
  name: string;
  type: TypeInfo;
  notNull: boolean;
  /** See WireColumn.collation. */
  collation?: string | null;
  wire: { oid: number; typmod: number };
}

/** Runs the plan's select list for no rows: compiles it (a typo fails here) and describes each output column. */
export async function outputColumns(c: pg.ClientBase, p: PipelineConfig, plan: ColumnPlan): Promise<WireColumn[]> {
  const res = await c.query({ text: `SELECT ${plan.select.join(', ')} FROM ${sourceRelation(p)} LIMIT 0`, types: RAW_TEXT });
  const wire = res.fields.map((f) => ({ name: f.name, oid: f.dataTypeID, typmod: f.dataTypeModifier, tableId: f.tableID, columnId: f.columnID }));
  const collations = await columnCollations(c, wire);
  return wire.map((w, i) => (w.tableId === 0 ? w : { ...w, collation: collations[i] ?? null }));
}

/** A collation's schema and name, as columns `coll_schema`, `coll_name` (NULL when joined to nothing). */
const COLLATION_COLUMNS = `cn.nspname AS coll_schema, co.collname AS coll_name`;

/** A collation as SQL names it: built-in ones bare (`"C"`), others schema-qualified. */
const collationSql = (r: { coll_schema: string | null; coll_name: string | null }): string | null =>
  r.coll_name === null ? null : r.coll_schema === 'pg_catalog' || r.coll_schema === null ? quoteIdent(r.coll_name) : `${quoteIdent(r.coll_schema)}.${quoteIdent(r.coll_name)}`;

/** Collations of table columns other than the database default (RowDescription does not carry them); one statement, rows not read. */
async function columnCollations(c: pg.ClientBase, wire: { tableId: number; columnId: number }[]): Promise<(string | null)[]> {
  const traced = wire.some((w) => w.tableId !== 0);
  if (!traced) return wire.map(() => null);
  const { rows } = await c.query<{ ord: number; coll_schema: string | null; coll_name: string | null }>(
    `SELECT x.ord::int AS ord, ${COLLATION_COLUMNS}
       FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS x(rel, attnum, ord)
       JOIN pg_attribute a ON a.attrelid = x.rel AND a.attnum = x.attnum
       JOIN pg_collation co ON co.oid = a.attcollation AND co.oid <> 100
       JOIN pg_namespace cn ON cn.oid = co.collnamespace`,
    [wire.map((w) => w.tableId), wire.map((w) => w.columnId)],
  );
  const byOrd = new Map(rows.map((r) => [r.ord, collationSql(r)]));
  return wire.map((_, i) => byOrd.get(i + 1) ?? null);
}

/** The subset of `collations` (as SQL names, see WireColumn.collation) that database `c` lacks. */
export async function missingCollations(c: pg.ClientBase, collations: string[]): Promise<string[]> {
  if (collations.length === 0) return [];
  const { rows } = await c.query<{ name: string }>(`SELECT x.name FROM unnest($1::text[]) AS x(name) WHERE to_regcollation(x.name) IS NULL`, [collations]);
  return rows.map((r) => r.name);
}

interface TypeRow {
  ord: number;
  formatted: string;
  is_array: boolean;
  not_null: boolean;
  base_oid: number;
  base_schema: string;
  base_name: string;
  base_kind: string;
  base_relkind: string | null;
  base_formatted: string;
  base_bare: string;
  ext_name: string | null;
  ext_schema: string | null;
}

const toTypeInfo = (r: TypeRow): TypeInfo => ({
  formatted: r.formatted,
  isArray: r.is_array,
  base: {
    oid: Number(r.base_oid),
    schema: r.base_schema,
    name: r.base_name,
    kind: r.base_kind,
    relkind: r.base_relkind,
    extension: r.ext_name === null ? null : { name: r.ext_name, schema: r.ext_schema! },
  },
  modifier: r.base_formatted.startsWith(r.base_bare) ? r.base_formatted.slice(r.base_bare.length) : '',
});

/**
 * Describes types given as (oid, typmod), each optionally traced to a table column (rel, attnum)
 * whose catalog entry wins: that keeps domains, which RowDescription reports as their base type.
 */
async function describe(c: pg.ClientBase, refs: { oid: number; typmod: number; rel?: number; attnum?: number }[]): Promise<(TypeInfo & { notNull: boolean })[]> {
  if (refs.length === 0) return [];
  const { rows } = await c.query<TypeRow>(
    `SELECT x.ord::int AS ord, format_type(ty.oid, ty.typmod) AS formatted, t.typcategory = 'A' AND t.typelem <> 0 AS is_array,
            coalesce(a.attnotnull, false) AS not_null,
            b.oid AS base_oid, bn.nspname AS base_schema, b.typname AS base_name, b.typtype AS base_kind, rc.relkind AS base_relkind,
            format_type(b.oid, ty.typmod) AS base_formatted, format_type(b.oid, NULL) AS base_bare, e.extname AS ext_name, en.nspname AS ext_schema
       FROM unnest($1::oid[], $2::int4[], $3::oid[], $4::int4[]) WITH ORDINALITY AS x(oid, typmod, rel, attnum, ord)
       LEFT JOIN pg_attribute a ON a.attrelid = x.rel AND a.attnum = x.attnum AND NOT a.attisdropped
       CROSS JOIN LATERAL (SELECT coalesce(a.atttypid, x.oid) AS oid, coalesce(a.atttypmod, x.typmod) AS typmod) ty
       JOIN pg_type t ON t.oid = ty.oid
       JOIN pg_type b ON b.oid = CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
       JOIN pg_namespace bn ON bn.oid = b.typnamespace
       LEFT JOIN pg_class rc ON rc.oid = b.typrelid
       LEFT JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = b.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       LEFT JOIN pg_extension e ON e.oid = d.refobjid
       LEFT JOIN pg_namespace en ON en.oid = e.extnamespace
      ORDER BY x.ord`,
    [refs.map((r) => r.oid), refs.map((r) => r.typmod), refs.map((r) => r.rel ?? 0), refs.map((r) => r.attnum ?? 0)],
  );
  return rows.map((r) => ({ ...toTypeInfo(r), notNull: r.not_null }));
}

/** Exact types of output columns (`isTable`: NOT NULL of plain table columns counts; a query's rows may differ). */
export async function describeColumns(c: pg.ClientBase, wire: WireColumn[], isTable: boolean): Promise<SourceColumn[]> {
  const infos = await describe(c, wire.map((w) => ({ oid: w.oid, typmod: w.typmod, rel: w.tableId, attnum: w.columnId })));
  return wire.map((w, i) => {
    const { notNull, ...type } = infos[i]!;
    return { name: w.name, type, notNull: isTable && w.tableId !== 0 && notNull, wire: { oid: w.oid, typmod: w.typmod }, ...(w.collation !== undefined && { collation: w.collation }) };
  });
}

/** A user-defined type the target may need created before a column can use it. */
export type TypeDefinition =
  | { kind: 'enum'; labels: string[] }
  | { kind: 'domain'; base: TypeInfo; default: string | null; notNull: boolean; checks: { name: string; def: string }[] }
  | { kind: 'composite'; attributes: { name: string; type: TypeInfo }[] };

const domainChecks = z.array(z.object({ name: z.string(), def: z.string() }));

/** How `type` is defined in the source, or null for kinds the worker does not create (ranges, table row types, …). */
export async function typeDefinition(c: pg.ClientBase, type: TypeInfo): Promise<TypeDefinition | null> {
  const oid = type.base.oid;
  if (type.base.kind === 'e') {
    const { rows } = await c.query<{ label: string }>(`SELECT enumlabel AS label FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder`, [oid]);
    return { kind: 'enum', labels: rows.map((r) => r.label) };
  }
  if (type.base.kind === 'd') {
    // Deparsed in this session (typdefault is text from whichever session created the domain), so
    // its quoting follows this session's standard_conforming_strings, which is read with it.
    const { rows } = await c.query<{ base: number; typmod: number; def: string | null; not_null: boolean; checks: unknown; scs: string }>(
      `SELECT typbasetype AS base, typtypmod AS typmod, pg_get_expr(typdefaultbin, 0) AS def, typnotnull AS not_null,
              current_setting('standard_conforming_strings') AS scs,
              (SELECT coalesce(json_agg(json_build_object('name', conname, 'def', pg_get_constraintdef(k.oid)) ORDER BY conname), '[]')
                 FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c') AS checks
         FROM pg_type t WHERE t.oid = $1`,
      [oid],
    );
    const r = rows[0]!;
    const [base] = await describe(c, [{ oid: Number(r.base), typmod: r.typmod }]);
    // Normalised to standard_conforming_strings = on (E'' where a backslash is), as createTypeSql expects.
    const text = (t: string) => (r.scs === 'off' ? escapeCatalogLiterals(t, false) : t);
    const checks = domainChecks.parse(r.checks).map((k) => ({ ...k, def: text(k.def) }));
    return { kind: 'domain', base: base!, default: r.def === null ? null : text(r.def), notNull: r.not_null, checks };
  }
  if (type.base.kind === 'c' && type.base.relkind === 'c') {
    const { rows } = await c.query<{ name: string; oid: number; typmod: number }>(
      `SELECT a.attname AS name, a.atttypid AS oid, a.atttypmod AS typmod FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
        WHERE t.oid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [oid],
    );
    const types = await describe(c, rows.map((r) => ({ oid: Number(r.oid), typmod: r.typmod })));
    return { kind: 'composite', attributes: rows.map((r, i) => ({ name: r.name, type: types[i]! })) };
  }
  return null;
}

/** A column of an existing target table. */
export interface TargetColumn {
  name: string;
  type: string;
  notNull: boolean;
  generated: boolean;
  /** Its collation as SQL (see WireColumn.collation); null: the database default, or none. */
  collation?: string | null;
}

/**
 * The target's columns, or null when the table does not exist. Reads the catalog only: no lock on
 * the table, so a chunk can still take the ALTER's lock first (see src/sync/schemaChanges.ts).
 */
export async function targetColumns(c: pg.ClientBase, table: string): Promise<TargetColumn[] | null> {
  const { rows } = await c.query<{ rel: number | null; name: string | null; type: string; not_null: boolean; generated: boolean; coll_schema: string | null; coll_name: string | null }>(
    `SELECT r.oid::int8 AS rel, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null, a.attgenerated <> '' AS generated,
            ${COLLATION_COLUMNS}
       FROM (SELECT to_regclass($1) AS oid) r
       LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.oid <> 100
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      ORDER BY a.attnum`,
    [quoteTable(table)],
  );
  if (rows[0]?.rel == null) return null;
  return rows
    .filter((r) => r.name !== null)
    .map((r) => ({ name: r.name!, type: r.type, notNull: r.not_null, generated: r.generated, collation: collationSql(r) }));
}

/** What the target database already has of the schemas, types and extensions a new table needs. */
export interface TargetCatalog {
  schemas: Set<string>;
  /** `schema.name` of existing types. */
  types: Set<string>;
  /** Installed extensions and the schema each lives in. */
  extensions: Map<string, string>;
  /** Where an unqualified table name is created. */
  currentSchema: string | null;
}

export const typeKey = (schema: string, name: string) => `${schema}.${name}`;

export async function targetCatalog(c: pg.ClientBase, schemas: string[], types: { schema: string; name: string }[]): Promise<TargetCatalog> {
  const { rows } = await c.query<{ schemas: string[]; types: string[]; extensions: { name: string; schema: string }[] | null; current_schema: string | null }>(
    `SELECT ARRAY(SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1::text[])) AS schemas,
            ARRAY(SELECT n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                   WHERE (n.nspname, t.typname) IN (SELECT * FROM unnest($2::text[], $3::text[]))) AS types,
            (SELECT json_agg(json_build_object('name', e.extname, 'schema', n.nspname)) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace) AS extensions,
            current_schema() AS current_schema`,
    [schemas, types.map((t) => t.schema), types.map((t) => t.name)],
  );
  const r = rows[0]!;
  return {
    schemas: new Set(r.schemas),
    types: new Set(r.types),
    extensions: new Map((r.extensions ?? []).map((e) => [e.name, e.schema])),
    currentSchema: r.current_schema,
  };
}

/** The schema a config table name lives in (its own, or the target's current schema). */
export function tableSchema(table: string): string | undefined {
  return parseQualifiedName(table).schema;
}

/** An enum type and its labels in sort order (what `<` on its values follows). */
export interface EnumType {
  schema: string;
  name: string;
  /** Quoted and schema-qualified, for DDL. */
  qualified: string;
  labels: string[];
}

/**
 * The enum type behind each type oid (itself, an array's element, a domain's base, an array of
 * such a domain), or null where there is none: a column of any of those shapes needs its labels.
 */
export async function enumTypesOf(c: pg.ClientBase, oids: number[]): Promise<(EnumType | null)[]> {
  if (oids.length === 0) return [];
  const element = (t: string) => `CASE WHEN ${t}.typcategory = 'A' AND ${t}.typelem <> 0 THEN ${t}.typelem ELSE ${t}.oid END`;
  const { rows } = await c.query<{ ord: number; schema: string; name: string; labels: string[] }>(
    `SELECT x.ord::int AS ord, n.nspname AS schema, e.typname AS name,
            ARRAY(SELECT l.enumlabel::text FROM pg_enum l WHERE l.enumtypid = e.oid ORDER BY l.enumsortorder) AS labels
       FROM unnest($1::oid[]) WITH ORDINALITY AS x(oid, ord)
       JOIN pg_type t0 ON t0.oid = x.oid
       JOIN pg_type t1 ON t1.oid = ${element('t0')}
       JOIN pg_type t2 ON t2.oid = CASE WHEN t1.typtype = 'd' THEN t1.typbasetype ELSE t1.oid END
       JOIN pg_type e ON e.oid = ${element('t2')} AND e.typtype = 'e'
       JOIN pg_namespace n ON n.oid = e.typnamespace`,
    [oids],
  );
  const byOrd = new Map(rows.map((r) => [r.ord, { schema: r.schema, name: r.name, qualified: `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`, labels: r.labels }]));
  return oids.map((_, i) => byOrd.get(i + 1) ?? null);
}

/** The enum types of a target table's columns, by column name (columns of other types are absent). */
export async function targetEnumColumns(c: pg.ClientBase, table: string): Promise<Map<string, EnumType>> {
  const { rows } = await c.query<{ name: string; oid: number }>(
    `SELECT a.attname AS name, a.atttypid::int8 AS oid FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [quoteTable(table)],
  );
  const types = await enumTypesOf(c, rows.map((r) => Number(r.oid)));
  return new Map(rows.flatMap((r, i) => (types[i] ? [[r.name, types[i]!] as const] : [])));
}

/** Enum types the target database has under these (schema, name) pairs, by `schema.name` (typeKey). */
export async function enumTypesNamed(c: pg.ClientBase, names: { schema: string; name: string }[]): Promise<Map<string, EnumType>> {
  if (names.length === 0) return new Map();
  const { rows } = await c.query<{ oid: number | null }>(
    `SELECT to_regtype(format('%I.%I', x.schema, x.name))::int8 AS oid FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(schema, name, ord) ORDER BY x.ord`,
    [names.map((n) => n.schema), names.map((n) => n.name)],
  );
  const found = rows.map((r, i) => ({ key: typeKey(names[i]!.schema, names[i]!.name), oid: r.oid === null ? null : Number(r.oid) }));
  const known = found.filter((f): f is { key: string; oid: number } => f.oid !== null);
  const types = await enumTypesOf(c, known.map((f) => f.oid));
  return new Map(known.flatMap((f, i) => (types[i] ? [[f.key, types[i]!] as const] : [])));
}
