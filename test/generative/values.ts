// Column values in PostgreSQL's text input form (what `::type` accepts), from the case's RNG:
// NULLs, unicode, empty strings, values large enough to be TOASTed out of line.
import type { Rng } from './rng';
import type { Column, TableSpec } from './case';

const WORDS = ['', 'a', 'B', 'b', 'Ä', 'ä', 'é', 'E', 'z', 'Z', 'ß', 'ss', 'ñ', 'Ö', 'ø', '_', '-', ' ', '日本', '😀', 'Ω', 'ǅ', 'ﬁ', '\t', 'O\'Brien', 'back\\slash', '"q"', '{x}', ','];
const LEX = ['cat', 'fat', 'rat', 'sat', 'mat', 'hat', 'bat'];

/** A text value: unicode, an empty string, quotes and backslashes. */
export function textValue(rng: Rng, maxParts = 4): string {
  let s = '';
  const n = rng.int(0, maxParts);
  for (let i = 0; i < n; i++) s += rng.pick(WORDS);
  return s;
}

/** Incompressible text, so PostgreSQL stores it out of line (TOAST) rather than compressing it inline. */
export function toastValue(rng: Rng): string {
  const len = rng.int(3_000, 9_000);
  const chars: string[] = [];
  for (let i = 0; i < len; i++) chars.push(String.fromCharCode(rng.int(33, 126)));
  return chars.join('').replace(/\\/g, '/');
}

export function uuidValue(rng: Rng): string {
  const h = () => rng.int(0, 0xffff).toString(16).padStart(4, '0');
  return `${h()}${h()}-${h()}-4${h().slice(1)}-a${h().slice(1)}-${h()}${h()}${h()}`;
}

const arrayText = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** One value for a column, or null (a NULL) where the column allows it. */
export function columnValue(rng: Rng, c: Column, t: TableSpec, bulk = false): string | null {
  if (!c.notNull && c.kind !== 'toast' && rng.chance(0.12)) return null;
  switch (c.kind) {
    case 'int':
      return String(rng.int(-2_147_483_648, 2_147_483_647));
    case 'bigint':
      return `${rng.chance(0.5) ? '-' : ''}${rng.int(0, 2 ** 31)}${rng.int(0, 999_999_999)}`;
    case 'numeric':
      return `${rng.int(-99_999_999, 99_999_999)}.${String(rng.int(0, 999)).padStart(3, '0')}`;
    case 'text':
      return textValue(rng);
    case 'varchar':
      return Array.from(textValue(rng, 3)).slice(0, 20).join('');
    case 'uuid':
      return uuidValue(rng);
    case 'bool':
      return rng.chance(0.5) ? 'true' : 'false';
    case 'timestamptz':
      return new Date(Date.UTC(rng.int(1970, 2040), rng.int(0, 11), rng.int(1, 28), rng.int(0, 23), rng.int(0, 59), rng.int(0, 59), rng.int(0, 999))).toISOString();
    case 'date':
      return new Date(Date.UTC(rng.int(1, 9999), rng.int(0, 11), rng.int(1, 28))).toISOString().slice(0, 10);
    case 'jsonb':
      return JSON.stringify({ [textValue(rng, 2)]: rng.chance(0.5) ? textValue(rng) : rng.int(-5, 5), n: rng.chance(0.3) ? null : [rng.int(0, 9), true] });
    case 'bytea': {
      const n = rng.int(0, 24);
      let hex = '';
      for (let i = 0; i < n; i++) hex += rng.int(0, 255).toString(16).padStart(2, '0');
      return `\\x${hex}`;
    }
    case 'int[]':
      return `{${Array.from({ length: rng.int(0, 4) }, () => (rng.chance(0.15) ? 'NULL' : String(rng.int(-100, 100)))).join(',')}}`;
    case 'text[]':
      return `{${Array.from({ length: rng.int(0, 3) }, () => (rng.chance(0.15) ? 'NULL' : arrayText(textValue(rng, 2)))).join(',')}}`;
    case 'enum':
      return rng.pick(t.enumLabels);
    case 'domain':
      return String(rng.int(1, 1_000_000));
    case 'tsvector':
      return Array.from({ length: rng.int(0, 4) }, () => rng.pick(LEX)).join(' ');
    case 'toast':
      // In bulk writes (thousands of rows) few values are TOASTed, so a 10^5-row transaction stays some MB.
      if (rng.chance(bulk ? 0.01 : 0.6)) return toastValue(rng);
      return c.notNull ? textValue(rng) : rng.chance(0.3) ? null : textValue(rng);
  }
}

/** The SQL type of a column (enum and domain types are the table's own). */
export function columnType(c: Column, t: TableSpec): string {
  const coll = c.collation ? ` COLLATE "${c.collation}"` : '';
  switch (c.kind) {
    case 'numeric':
      return 'numeric(14,3)';
    case 'text':
    case 'toast':
      return `text${coll}`;
    case 'varchar':
      return `varchar(20)${coll}`;
    case 'bool':
      return 'boolean';
    case 'enum':
      return `${t.name}_enum`;
    case 'domain':
      return `${t.name}_dom`;
    default:
      return c.kind;
  }
}
