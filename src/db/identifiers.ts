/** PostgreSQL identifier handling: every schema/table/column name from config goes through here. */

const MAX_IDENTIFIER_BYTES = 63; // NAMEDATALEN - 1; longer names are silently truncated by the server.

export class IdentifierError extends Error {
  override name = 'IdentifierError';
}

export function checkIdentifier(name: string, what = 'identifier'): string {
  if (name.length === 0) throw new IdentifierError(`${what} is empty`);
  if (name.includes('\0')) throw new IdentifierError(`${what} ${JSON.stringify(name)} contains a NUL byte`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES)
    throw new IdentifierError(`${what} ${JSON.stringify(name)} is ${bytes} bytes; PostgreSQL allows at most ${MAX_IDENTIFIER_BYTES}`);
  return name;
}

/** Quotes one identifier exactly as given (case and punctuation preserved). */
export function quoteIdent(name: string, what?: string): string {
  return `"${checkIdentifier(name, what).replace(/"/g, '""')}"`;
}

export interface QualifiedName {
  schema?: string;
  name: string;
}

/**
 * Parses `table`, `schema.table`, or parts in double quotes (`"my schema"."odd.name"`).
 * Unquoted parts are taken verbatim (no case folding): config names are exact.
 */
export function parseQualifiedName(text: string): QualifiedName {
  const parts: string[] = [];
  let i = 0;
  while (i <= text.length) {
    let part = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new IdentifierError(`unterminated quote in table name ${JSON.stringify(text)}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += text[i++];
      }
      if (i < text.length && text[i] !== '.')
        throw new IdentifierError(`unexpected ${JSON.stringify(text[i])} after quoted name in ${JSON.stringify(text)}`);
    } else {
      const dot = text.indexOf('.', i);
      const end = dot === -1 ? text.length : dot;
      part = text.slice(i, end);
      i = end;
    }
    parts.push(checkIdentifier(part, `name part in ${JSON.stringify(text)}`));
    i++; // skip the dot (or step past the end)
  }
  if (parts.length > 2) throw new IdentifierError(`table name ${JSON.stringify(text)} has ${parts.length} parts; expected table or schema.table`);
  return parts.length === 2 ? { schema: parts[0], name: parts[1]! } : { name: parts[0]! };
}

export function quoteQualified(q: QualifiedName): string {
  return q.schema === undefined ? quoteIdent(q.name) : `${quoteIdent(q.schema)}.${quoteIdent(q.name)}`;
}

/** Parses then quotes a config table name. */
export function quoteTable(text: string): string {
  return quoteQualified(parseQualifiedName(text));
}

/**
 * A string literal (for the rare place a parameter cannot be used, e.g. SET, COMMENT, ENUM labels).
 * Written as E'…' with quotes and backslashes escaped, so it means the same text whatever the
 * session's standard_conforming_strings says (with it off, '…\' would end early).
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new IdentifierError('string literal contains a NUL byte');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
