import { quoteIdent, quoteTable } from './identifiers';

/**
 * SQL of a re-copy's prune: the source's keys, copied into a temporary table beside the target,
 * name the target rows whose key left the source while no checkpoint followed it.
 */
export const SOURCE_KEYS = 'lbw_source_keys';

const list = (cols: string[]) => cols.map((c) => quoteIdent(c)).join(', ');

/** Same names and types as the target's key columns; dropped with the transaction. */
export const sourceKeysTableSql = (target: string, key: string[]) =>
  `CREATE TEMP TABLE ${SOURCE_KEYS} ON COMMIT DROP AS SELECT ${list(key)} FROM ${quoteTable(target)} WITH NO DATA`;

/** The source's key columns (source names), as text. */
export const copySourceKeysOutSql = (source: string, sourceKey: string[]) => `COPY (SELECT ${list(sourceKey)} FROM ${quoteTable(source)}) TO STDOUT`;

export const copySourceKeysInSql = (key: string[]) => `COPY ${SOURCE_KEYS} (${list(key)}) FROM STDIN`;

export const deleteKeysNotInSourceSql = (target: string, key: string[]) =>
  `DELETE FROM ${quoteTable(target)} t WHERE NOT EXISTS (SELECT 1 FROM ${SOURCE_KEYS} k WHERE ${key.map((c) => `k.${quoteIdent(c)} = t.${quoteIdent(c)}`).join(' AND ')})`;
