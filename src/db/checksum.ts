import type pg from 'pg';
import { quoteIdent } from './identifiers';

export interface TableChecksum {
  rows: number;
  md5: string;
}

/**
 * Order-independent-of-storage checksum of a relation's rows over the given columns, ordered by
 * `orderBy`. `relation` is SQL (a quoted table or a parenthesised SELECT with an alias).
 */
export async function relationChecksum(db: pg.Pool | pg.Client, relation: string, columns: string[], orderBy: string[]): Promise<TableChecksum> {
  const cols = columns.map((c) => `r.${quoteIdent(c)}`).join(', ');
  const order = orderBy.map((c) => `r.${quoteIdent(c)}`).join(', ');
  const res = await db.query<{ rows: string; md5: string | null }>(
    `SELECT count(*)::text AS rows, md5(string_agg(md5(ROW(${cols})::text), '' ORDER BY ${order})) AS md5 FROM ${relation} AS r`,
  );
  return { rows: Number(res.rows[0]!.rows), md5: res.rows[0]!.md5 ?? md5OfNothing };
}

const md5OfNothing = 'd41d8cd98f00b204e9800998ecf8427e';
