// The other ways to copy a table database to database, measured in the same run as our sync:
// the raw binary COPY pipe (the yardstick), pg_dump | psql, and pgcopydb and pgloader when installed.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PeerTiming {
  seconds: number;
  /** The command as run (connection strings replaced by $SRC/$DST). */
  command: string;
}

/** Absolute path of a command on PATH, or undefined. */
export async function which(cmd: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${cmd}`]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Runs a bash pipeline with SRC/DST in its environment (never on its command line); fails if any stage fails. */
async function timedShell(script: string, vars: Record<string, string>): Promise<PeerTiming> {
  const t0 = performance.now();
  try {
    await run('bash', ['-c', `set -euo pipefail; ${script}`], { env: { ...process.env, ...vars }, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${script}: ${(e.stderr || e.message).trim().split('\n').slice(-5).join(' | ')}`);
  }
  return { seconds: (performance.now() - t0) / 1000, command: script };
}

/**
 * The yardstick: `psql COPY … TO STDOUT (FORMAT binary) | psql COPY … FROM STDIN (FORMAT binary)`
 * into an existing (keyed, empty) table. `srcUrl` may point through the throttling proxy.
 */
export function rawPipe(srcUrl: string, dstUrl: string, srcTable: string, dstTable: string): Promise<PeerTiming> {
  return timedShell(
    `psql "$SRC" -qAtX -v ON_ERROR_STOP=1 -c "COPY ${srcTable} TO STDOUT (FORMAT binary)" | ` +
      `psql "$DST" -qAtX -v ON_ERROR_STOP=1 -c "COPY ${dstTable} FROM STDIN (FORMAT binary)"`,
    { SRC: srcUrl, DST: dstUrl },
  );
}

/** `pg_dump -t table | psql`: creates the table in the target, loads it unindexed, then adds the key. */
export function pgDumpPipe(srcUrl: string, dstUrl: string, table: string): Promise<PeerTiming> {
  return timedShell(`pg_dump --no-owner --no-acl -t ${table} "$SRC" | psql "$DST" -qX -v ON_ERROR_STOP=1 > /dev/null`, { SRC: srcUrl, DST: dstUrl });
}

export interface PgcopydbRun extends PeerTiming {
  version: string;
}

/** `pgcopydb clone` of one table (filters), `jobs` COPY and index jobs; the table must not exist in the target. */
export async function pgcopydbClone(srcUrl: string, dstUrl: string, schema: string, table: string, jobs: number): Promise<PgcopydbRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-bench-pgcopydb-'));
  try {
    const filters = path.join(dir, 'filters.ini');
    await writeFile(filters, `[include-only-table]\n${schema}.${table}\n`);
    const version = (await run('pgcopydb', ['--version'])).stdout.split('\n')[0]?.trim() ?? 'pgcopydb';
    const t = await timedShell(
      `pgcopydb clone --source "$SRC" --target "$DST" --dir "$WORK/work" --filters "$WORK/filters.ini" ` +
        `--table-jobs ${jobs} --index-jobs ${jobs} --no-owner --no-acl --skip-extensions --no-comments > "$WORK/log" 2>&1 || { tail -5 "$WORK/log" >&2; exit 1; }`,
      { SRC: srcUrl, DST: dstUrl, WORK: dir },
    );
    return { ...t, version, command: t.command.replace(/ > .*$/, '') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface PgloaderRun extends PeerTiming {
  version: string;
}

/** `pgloader` of one table database to database (it creates the table, loads it, then indexes it); the table must not exist in the target. */
export async function pgloaderCopy(srcUrl: string, dstUrl: string, schema: string, table: string): Promise<PgloaderRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-bench-pgloader-'));
  try {
    const version = (await run('pgloader', ['--version'])).stdout.split('\n')[0]?.trim() ?? 'pgloader';
    // Connection strings go in the load file (pgloader reads them nowhere else), which stays in a private directory.
    await writeFile(
      path.join(dir, 'load'),
      `LOAD DATABASE FROM ${srcUrl} INTO ${dstUrl}\n  INCLUDING ONLY TABLE NAMES MATCHING '${table}' IN SCHEMA '${schema}'\n  WITH create tables, create indexes, include no drop, foreign keys;\n`,
      { mode: 0o600 },
    );
    const t = await timedShell(`pgloader --quiet "$WORK/load" > "$WORK/log" 2>&1 || { tail -5 "$WORK/log" >&2; exit 1; }`, { WORK: dir });
    return { ...t, version, command: `pgloader <load file: LOAD DATABASE FROM $SRC INTO $DST INCLUDING ONLY TABLE NAMES MATCHING '${table}'>` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
