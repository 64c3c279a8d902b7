import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { createExtensionSql, createSchemaSql, createTableSql, createTypeSql, DDL_SESSION_SETTINGS, renderType } from '../db/targetDdl';
import { missingCollations, tableSchema, targetCatalog, typeDefinition, typeKey, type SourceColumn, type TypeDefinition, type TypeInfo } from '../db/typeCatalog';
import { configError } from './errors';

/**
 * Creating a missing target: a table with the source's exact column types, NOT NULL where the
 * source column is, and a primary key on the pipeline's key; plus whatever those types need in
 * the target database (its schema, extensions, enums, domains and composite types).
 */

/** One DDL statement and, for CREATE EXTENSION, what needs it (for an error that names the fix). */
export interface DdlStatement {
  sql: string;
  extension?: { name: string; column: string; type: string };
}

export interface TypePreparation {
  /** Schemas, extensions and user-defined types to create first, dependencies before dependents. */
  statements: DdlStatement[];
  /** A type's name in the target database. */
  render(type: TypeInfo): string;
  currentSchema: string | null;
}

interface UserType {
  schema: string;
  name: string;
  type: TypeInfo;
  def: TypeDefinition | null;
  column: string;
}

const KIND_NAMES: Record<string, string> = { b: 'base type', c: 'table row type', d: 'domain', e: 'enum', p: 'pseudo-type', r: 'range type', m: 'multirange type' };

/**
 * What the target needs before columns of these types can be created: user-defined types (found
 * through domains and composites too) it lacks, in dependency order, and extensions it lacks.
 * `schemas`: schemas to create when missing (the target table's).
 */
export async function prepareTypes(
  s: pg.ClientBase,
  t: pg.ClientBase,
  columns: { name: string; type: TypeInfo; collation?: string | null }[],
  pipeline: string,
  schemas: string[] = [],
): Promise<TypePreparation> {
  await requireCollations(t, columns, pipeline);
  const userTypes = new Map<string, UserType>();
  const extensions = new Map<string, { sourceSchema: string; column: string; type: string }>();
  const visit = async (type: TypeInfo, column: string): Promise<void> => {
    const { base } = type;
    if (base.schema === 'pg_catalog') return;
    if (base.extension) {
      if (!extensions.has(base.extension.name)) extensions.set(base.extension.name, { sourceSchema: base.extension.schema, column, type: type.formatted });
      return;
    }
    const key = typeKey(base.schema, base.name);
    if (userTypes.has(key)) return;
    userTypes.set(key, { schema: base.schema, name: base.name, type, def: null, column }); // placeholder: a cycle stops here
    const def = await typeDefinition(s, type);
    if (def?.kind === 'domain') await visit(def.base, column);
    if (def?.kind === 'composite') for (const a of def.attributes) await visit(a.type, column);
    // Re-inserted after its dependencies, so creation follows the map's order.
    userTypes.delete(key);
    userTypes.set(key, { schema: base.schema, name: base.name, type, def, column });
  };
  for (const c of columns) await visit(c.type, c.name);

  const wanted = [...new Set([...schemas, ...[...userTypes.values()].map((u) => u.schema), ...[...extensions.values()].map((e) => e.sourceSchema)])];
  const catalog = await targetCatalog(t, wanted, [...userTypes.values()].map((u) => ({ schema: u.schema, name: u.name })));
  const extensionSchema = (name: string) => catalog.extensions.get(name) ?? extensions.get(name)?.sourceSchema ?? 'public';
  const render = (type: TypeInfo) => renderType(type, extensionSchema);

  const statements: DdlStatement[] = [];
  const created = new Set(catalog.schemas);
  const ensureSchema = (schema: string) => {
    if (created.has(schema)) return;
    created.add(schema);
    statements.push({ sql: createSchemaSql(schema) });
  };
  for (const schema of schemas) ensureSchema(schema);
  for (const [name, e] of extensions) {
    if (catalog.extensions.has(name)) continue;
    ensureSchema(e.sourceSchema);
    statements.push({ sql: createExtensionSql(name, e.sourceSchema), extension: { name, column: e.column, type: e.type } });
  }
  for (const u of userTypes.values()) {
    if (catalog.types.has(typeKey(u.schema, u.name))) continue;
    if (!u.def)
      throw configError(
        `pipelines.${pipeline}.target: column "${u.column}" has type ${u.type.formatted} (a ${KIND_NAMES[u.type.base.kind] ?? 'type'}), which the target database lacks and the worker does not create; create ${u.schema}.${u.name} in the target first`,
      );
    ensureSchema(u.schema);
    statements.push({ sql: createTypeSql(u.schema, u.name, u.def, render) });
  }
  return { statements, render, currentSchema: catalog.currentSchema };
}

/**
 * Columns keep their collation in the target (it decides their order, and so what a key range
 * holds); one the target database lacks is not guessed at: the error names it and the fix.
 */
async function requireCollations(t: pg.ClientBase, columns: { name: string; collation?: string | null }[], pipeline: string): Promise<void> {
  const wanted = [...new Set(columns.map((c) => c.collation).filter((x): x is string => !!x))];
  const [missing] = await missingCollations(t, wanted);
  if (missing === undefined) return;
  const column = columns.find((c) => c.collation === missing)!.name;
  throw configError(
    `pipelines.${pipeline}.target: column "${column}" has collation ${missing} in the source, which the target database lacks; create it there first ` +
      `(CREATE COLLATION ${missing} (…) with the provider and locale the source's pg_collation shows), or cast the column under transform.columns`,
  );
}

/** The statements that create the missing target table of `p` for these source columns. */
export async function targetCreation(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, pipeline: string, columns: SourceColumn[]): Promise<DdlStatement[]> {
  const table = p.target.table!;
  const schema = tableSchema(table);
  const prep = await prepareTypes(s, t, columns, pipeline, schema ? [schema] : []);
  if (!schema && prep.currentSchema === null)
    throw configError(`pipelines.${pipeline}.target.table: "${table}" names no schema and the target's search_path has none that exists; write it as schema.table`);
  const defs = columns.map((c) => ({ name: c.name, type: prep.render(c.type), notNull: c.notNull || p.key.includes(c.name), collation: c.collation }));
  return [...prep.statements, { sql: createTableSql(table, defs, p.key) }];
}

/** Runs DDL in the caller's transaction; a refused CREATE EXTENSION becomes an error that says what to install where. */
export async function runDdl(t: pg.ClientBase, statements: DdlStatement[], pipeline: string): Promise<void> {
  if (statements.length) for (const setting of DDL_SESSION_SETTINGS) await t.query(setting);
  for (const st of statements) {
    try {
      await t.query(st.sql);
    } catch (err) {
      if (!st.extension) throw err;
      const e = err as { message?: string; code?: string };
      const { name, column, type } = st.extension;
      throw configError(
        `pipelines.${pipeline}.target: column "${column}" has type ${type} from extension "${name}", which the target database does not have, ` +
          `and creating it failed: ${e.message ?? String(err)}${e.code ? ` (SQLSTATE ${e.code})` : ''}. ` +
          `Install it in the target database (CREATE EXTENSION ${name}; as a user allowed to, e.g. the database owner), then start the sync again`,
      );
    }
  }
}
