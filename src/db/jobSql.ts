import type pg from 'pg';
import { quoteTable } from './identifiers';
import { RAW_TEXT } from './rawText';

/** The statements an operational job runs besides its own SQL. */

/**
 * The extended query protocol, also without parameters: it carries exactly one statement, so a
 * `COMMIT; DELETE …` inside a job's SQL cannot end the surrounding read-only transaction (pg sends
 * parameterless queries over the simple protocol, which runs every statement in the text).
 */
const ONE_STATEMENT = { queryMode: 'extended' } as Record<string, unknown>;

/** EXPLAIN of one bound statement, as text lines. */
export async function explainStatement(c: pg.ClientBase, text: string, values: unknown[]): Promise<string> {
  const res = await c.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${text}`, values, ...ONE_STATEMENT });
  return res.rows.map((r) => r['QUERY PLAN']).join('\n');
}

/** A read step's result kept as a table (`into`), replacing an earlier one. */
export async function materialize(c: pg.ClientBase, into: string, text: string, values: unknown[]): Promise<number> {
  await c.query(`DROP TABLE IF EXISTS ${quoteTable(into)}`);
  return (await c.query({ text: `CREATE TABLE ${quoteTable(into)} AS ${text}`, values, ...ONE_STATEMENT })).rowCount ?? 0;
}

/** Runs a statement with every value as PostgreSQL's own text. */
export async function queryText<R extends Record<string, unknown> = Record<string, string | null>>(c: pg.ClientBase, text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  return c.query<R>({ text, values, types: RAW_TEXT });
}

/** A read step's one statement (extended protocol), as PostgreSQL's own text. */
export async function readText(c: pg.ClientBase, text: string, values: unknown[]): Promise<pg.QueryResult<Record<string, string | null>>> {
  return c.query<Record<string, string | null>>({ text, values, types: RAW_TEXT, ...ONE_STATEMENT });
}

/** Cancels the statement running on another backend (the job's own connection is busy with it). */
export async function cancelBackend(pool: pg.Pool, pid: number): Promise<void> {
  await pool.query('SELECT pg_cancel_backend($1)', [pid]);
}
