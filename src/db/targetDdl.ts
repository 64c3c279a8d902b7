import { quoteIdent, quoteLiteral, quoteTable } from './identifiers';
import type { TypeDefinition, TypeInfo } from './typeCatalog';

/** DDL text for creating and evolving target tables (what src/sync/createTarget.ts and schemaChanges.ts run). */

/**
 * An enum label as a literal: plain `'ok'` where that means the same text whatever
 * standard_conforming_strings says (no backslash), so the DDL a plan and an error show reads as
 * people write it; quoteLiteral's E'…' otherwise.
 */
export const labelLiteral = (label: string) => (label.includes('\\') ? quoteLiteral(label) : `'${label.replace(/'/g, "''")}'`);

/** A type's name for the target database: built-in types as PostgreSQL prints them, others schema-qualified. */
export function renderType(type: TypeInfo, extensionSchema: (extension: string) => string): string {
  if (type.base.schema === 'pg_catalog') return type.formatted;
  const schema = type.base.extension ? extensionSchema(type.base.extension.name) : type.base.schema;
  return `${quoteIdent(schema)}.${quoteIdent(type.base.name)}${type.modifier}${type.isArray ? '[]' : ''}`;
}

export interface ColumnDefinition {
  name: string;
  /** Rendered type (renderType). */
  type: string;
  notNull: boolean;
  /** A collation other than the database default, as SQL (`"C"`, `"public"."german"`). */
  collation?: string | null;
}

/** A column's type with its collation, for CREATE TABLE and ADD COLUMN. */
export const columnTypeSql = (type: string, collation?: string | null) => (collation ? `${type} COLLATE ${collation}` : type);

export function createTableSql(table: string, columns: ColumnDefinition[], key: string[]): string {
  const lines = columns.map((c) => `  ${quoteIdent(c.name)} ${columnTypeSql(c.type, c.collation)}${c.notNull ? ' NOT NULL' : ''}`);
  if (key.length) lines.push(`  PRIMARY KEY (${key.map((k) => quoteIdent(k)).join(', ')})`);
  return `CREATE TABLE ${quoteTable(table)} (\n${lines.join(',\n')}\n)`;
}

export const createSchemaSql = (schema: string) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`;

export const createExtensionSql = (extension: string, schema: string) => `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(extension)} SCHEMA ${quoteIdent(schema)}`;

/**
 * Sent (as its own statement, before any DDL) in each transaction that creates or alters target
 * tables and types (runDdl): the DDL text is then read as written whatever the server or role
 * default says. The literals below are E'' anyway, so this guards text the worker did not write.
 */
export const DDL_SESSION_SETTINGS = ['SET LOCAL standard_conforming_strings = on'];

const WORD_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

/**
 * Catalog text (a domain's DEFAULT or CHECK, deparsed by the source under
 * standard_conforming_strings = on, as PostgreSQL does by default) with every standard string
 * literal rewritten as E'' with its backslashes doubled: it then means the same on a target
 * session whatever its standard_conforming_strings, where `'a\'` pasted raw would end no literal
 * under `off` and the rest of the text would be read as SQL. E'', U&'', B'', X'' literals, dollar
 * quotes, quoted identifiers and comments are kept as they are. Unterminated quoting is refused.
 */
export function escapeCatalogLiterals(text: string, standardConformingStrings = true): string {
  let out = '';
  let i = 0;
  const fail = () => {
    throw new Error(`catalog text has unterminated quoting, refusing to copy it: ${JSON.stringify(text.slice(0, 80))}`);
  };
  const closing = (from: number, quote: string, backslash: boolean) => {
    for (let j = from; j < text.length; j++) {
      if (backslash && text[j] === '\\') j++;
      else if (text[j] === quote) {
        if (text[j + 1] === quote) j++;
        else return j + 1;
      }
    }
    return fail();
  };
  while (i < text.length) {
    const c = text[i]!;
    const word = i > 0 && WORD_CHAR.test(text[i - 1]!);
    const prefix = word ? null : /^(?:[eE]|[uU]&|[bBxX])'/.exec(text.slice(i, i + 3));
    if (prefix) {
      const end = closing(i + prefix[0].length, "'", c === 'e' || c === 'E');
      out += text.slice(i, end);
      i = end;
    } else if (c === "'") {
      // Deparsed under standard_conforming_strings = off, a plain literal already has E'' escapes.
      const end = closing(i + 1, "'", !standardConformingStrings);
      const body = text.slice(i + 1, end - 1);
      out += !body.includes('\\') ? `'${body}'` : standardConformingStrings ? `E'${body.replace(/\\/g, '\\\\')}'` : `E'${body}'`;
      i = end;
    } else if (c === '"') {
      const end = closing(i + 1, '"', false);
      out += text.slice(i, end);
      i = end;
    } else if (c === '$' && !word && /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.test(text.slice(i))) {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i))![0];
      const end = text.indexOf(tag, i + tag.length);
      if (end === -1) fail();
      out += text.slice(i, end + tag.length);
      i = end + tag.length;
    } else if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      out += text.slice(i, end === -1 ? text.length : end);
      i = end === -1 ? text.length : end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

export interface TypeDdlOptions {
  /**
   * Copy a domain's DEFAULT and CHECK constraints (catalog text, run on the target). Off: the
   * domain is created over its base type with NOT NULL only, for targets that must not run
   * expressions read from the source.
   */
  domainConstraints?: boolean;
}

/** CREATE TYPE / CREATE DOMAIN for a user-defined type, named as in the source. */
export function createTypeSql(schema: string, name: string, def: TypeDefinition, render: (t: TypeInfo) => string, opts: TypeDdlOptions = {}): string {
  const qualified = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  switch (def.kind) {
    case 'enum':
      return `CREATE TYPE ${qualified} AS ENUM (${def.labels.map(labelLiteral).join(', ')})`;
    case 'composite':
      return `CREATE TYPE ${qualified} AS (${def.attributes.map((a) => `${quoteIdent(a.name)} ${render(a.type)}`).join(', ')})`;
    case 'domain': {
      const parts = [`CREATE DOMAIN ${qualified} AS ${render(def.base)}`];
      const constraints = opts.domainConstraints ?? true;
      if (constraints && def.default !== null) parts.push(`DEFAULT ${escapeCatalogLiterals(def.default)}`);
      if (def.notNull) parts.push('NOT NULL');
      // A NOT VALID check cannot be created as such; the copied values passed it in the source.
      if (constraints) for (const k of def.checks) parts.push(`CONSTRAINT ${quoteIdent(k.name)} ${escapeCatalogLiterals(k.def.replace(/ NOT VALID$/, ''))}`);
      return parts.join(' ');
    }
  }
}

/** Schema evolution: a new source column, always nullable (existing rows have no value for it). */
export const addColumnSql = (table: string, column: string, type: string) =>
  `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${quoteIdent(column)} ${type}`;

/** Schema evolution: a column the source dropped is kept and takes NULL from then on. */
export const dropNotNullSql = (table: string, column: string) => `ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(column)} DROP NOT NULL`;

/**
 * Taken before a chunk writes a row: chunks side by side that both want to evolve the target
 * queue here instead of deadlocking on each other's row locks. Tables are already quoted.
 */
export const lockForAlterSql = (tables: string[]) => `LOCK TABLE ${tables.join(', ')} IN ACCESS EXCLUSIVE MODE`;

/**
 * For the rest of the chunk's transaction: a lock that readers of the target hold longer than
 * this fails the chunk with 55P03 (retried with backoff) instead of outliving its heartbeat.
 */
export const alterLockTimeoutSql = (ms: number) => `SET LOCAL lock_timeout = ${Math.trunc(ms)}`;

/**
 * Schema evolution: a label the source's enum gained, placed next to a label both have so the
 * target sorts its values as the source does. `type` is already quoted.
 */
export const addEnumValueSql = (type: string, label: string, place?: { before: string } | { after: string }) =>
  `ALTER TYPE ${type} ADD VALUE IF NOT EXISTS ${labelLiteral(label)}${place ? ('before' in place ? ` BEFORE ${labelLiteral(place.before)}` : ` AFTER ${labelLiteral(place.after)}`) : ''}`;
