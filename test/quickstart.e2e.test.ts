// The README's five-minute walk, run from the README's own text: every block marked
// `<!-- quickstart: run -->` is executed in order through the real CLI, against a real Temporal dev
// server and the local PostgreSQL (two databases); `<!-- quickstart: output -->` blocks must appear
// in what the commands printed (`<…>` matches anything), and `<!-- quickstart: file F -->` is the
// file the commands wrote. Only what keeps parallel runs apart is changed: database names, ports and
// the worker's ops port.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { cleanUp } from './helpers/cleanup';
import { CLI, runCli, shown } from './helpers/cli';
import { ADMIN_URL } from './helpers/db';
import { codeBlocks, shellWords, type CodeBlock } from './helpers/docs';
import { startTemporal } from './helpers/temporal';

const README = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const walk = README.slice(README.indexOf('## A five-minute walk'), README.indexOf('\n## ', README.indexOf('## A five-minute walk') + 1));
const blocks = codeBlocks(walk).filter((b) => b.marker?.startsWith('quickstart:'));

const admin = new URL(ADMIN_URL);
const suffix = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
/** The walk's database names, made unique for this run. */
const databases = new Map<string, string>();
const dbName = (name: string) => {
  if (!databases.has(name)) databases.set(name, `lbw_qs_${suffix}_${name}`);
  return databases.get(name)!;
};

/** An expected output line as a whole-line pattern: literal text, `<…>` for anything. */
function linePattern(line: string, subst: (s: string) => string): RegExp {
  const parts = subst(line).split('<…>').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`);
}

/** Every expected line, in order, among the printed lines (progress may add lines between them). */
function missingLines(expected: string, printed: string, subst: (s: string) => string): string[] {
  const lines = printed.split('\n').map((l) => l.trimEnd());
  let at = 0;
  const missing: string[] = [];
  for (const want of expected.split('\n').filter((l) => l.trim() !== '')) {
    const re = linePattern(want, subst);
    const found = lines.findIndex((l, i) => i >= at && re.test(l));
    if (found < 0) missing.push(want);
    else at = found + 1;
  }
  return missing;
}

describe('the README quickstart, run from its text (real CLI, real Temporal dev server, local PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let dir: string;
  let worker: ChildProcess | undefined;
  let workerLog = '';

  before(async () => {
    env = await startTemporal();
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-quickstart-'));
  });

  after(() =>
    cleanUp(
      async () => {
        if (!worker || worker.exitCode !== null) return;
        const exited = new Promise((r) => worker!.once('exit', r));
        worker.kill('SIGTERM');
        const timer = setTimeout(() => worker?.kill('SIGKILL'), 40_000);
        await exited;
        clearTimeout(timer);
      },
      () => env?.teardown(),
      async () => {
        const c = new pg.Client({ connectionString: ADMIN_URL });
        await c.connect();
        for (const name of databases.values()) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await c.end();
      },
      () => dir && rm(dir, { recursive: true, force: true }),
    ),
  );

  test('the walk has its steps: a run, a file, outputs', () => {
    assert.ok(blocks.filter((b) => b.marker === 'quickstart: run').length >= 5, 'quickstart run blocks');
    assert.ok(blocks.some((b) => b.marker === 'quickstart: file lakebase.yaml'));
    assert.ok(blocks.filter((b) => b.marker === 'quickstart: output').length >= 4);
    for (const command of ['init --auth none', 'config check', 'temporal server start-dev', 'lakebase-worker worker', 'sync start', 'job run'])
      assert.ok(blocks.some((b) => b.marker === 'quickstart: run' && b.body.includes(command)), `the walk runs ${command}`);
  });

  test('every step as the README shows it, with the output it shows', { timeout: 300_000 }, async () => {
    const cliEnv: NodeJS.ProcessEnv = {
      TEMPORAL_ADDRESS: env.address,
      PGHOST: admin.hostname,
      PGPORT: admin.port || '5432',
      PGUSER: decodeURIComponent(admin.username) || 'postgres',
      LAKEBASE_CONFIG: undefined,
      LOG_LEVEL: 'info',
    };
    // What differs on this machine from the README's: the dev server's address, the server's port, the database names.
    const subst = (s: string) =>
      s
        .replaceAll('localhost:7233', env.address)
        .replaceAll('127.0.0.1:5432', `${cliEnv.PGHOST}:${cliEnv.PGPORT}`)
        .replace(/(:\d+)\/(shop|reporting)\b/g, (_m, port: string, name: string) => `${port}/${dbName(name)}`);
    const sql = async (database: string, text: string) => {
      const u = new URL(ADMIN_URL);
      u.pathname = `/${dbName(database)}`;
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      try {
        await c.query(text);
      } finally {
        await c.end();
      }
    };
    /** `psql -h H -U U DB …`: the database argument. */
    const psqlDatabase = (words: string[]) => words.slice(1).filter((w, i, all) => !w.startsWith('-') && !['-h', '-U', '-c', '-p'].includes(all[i - 1] ?? '') && !w.startsWith('<<'))[0];

    let printed = '';
    const run = async (block: CodeBlock) => {
      printed = '';
      const lines = block.body.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] ?? '';
        const words = shellWords(line);
        if (!words.length) continue;
        if (words[0] === 'createdb') {
          const c = new pg.Client({ connectionString: ADMIN_URL });
          await c.connect();
          await c.query(`CREATE DATABASE "${dbName(words.at(-1)!)}"`);
          await c.end();
        } else if (words[0] === 'psql' && words.includes('-c')) {
          await sql(psqlDatabase(words)!, words[words.indexOf('-c') + 1]!);
        } else if (words[0] === 'psql' && /<<'?(\w+)'?\s*$/.test(line)) {
          const end = /<<'?(\w+)'?\s*$/.exec(line)![1]!;
          const stop = lines.indexOf(end, i + 1);
          assert.ok(stop > i, `the here-document ${end} ends`);
          await sql(psqlDatabase(words)!, lines.slice(i + 1, stop).join('\n'));
          i = stop;
        } else if (words[0] === 'temporal' && words[1] === 'server') {
          assert.ok(env.address, 'the dev server this test started stands in for it');
        } else if (words[0] === 'npx' && words[1] === 'lakebase-worker' && words[2] === 'worker') {
          worker = spawn(process.execPath, [CLI, ...words.slice(2)], { cwd: dir, env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', ...cliEnv } });
          worker.stdout?.on('data', (d: Buffer) => (workerLog += d));
          worker.stderr?.on('data', (d: Buffer) => (workerLog += d));
          const deadline = Date.now() + 120_000;
          while (!workerLog.includes('"msg":"worker started"')) {
            assert.equal(worker.exitCode, null, `the worker ended:\n${workerLog}`);
            assert.ok(Date.now() < deadline, `the worker did not start:\n${workerLog}`);
            await new Promise((r) => setTimeout(r, 200));
          }
        } else if (words[0] === 'npx' && words[1] === 'lakebase-worker') {
          const r = await runCli(words.slice(2), { cwd: dir, env: cliEnv, timeoutMs: 180_000 });
          assert.equal(r.code, 0, `${line}\n${shown(r)}\n--- worker\n${workerLog.slice(-3000)}`);
          printed += r.stdout;
        } else {
          assert.fail(`the quickstart runs a command this test does not know: ${line}`);
        }
      }
    };

    for (const block of blocks) {
      if (block.marker === 'quickstart: run') await run(block);
      else if (block.marker === 'quickstart: output') {
        const missing = missingLines(block.body, printed, subst);
        assert.deepEqual(missing, [], `README line ${block.line}: expected output not printed\n--- printed\n${printed}`);
      } else if (block.marker?.startsWith('quickstart: file ')) {
        const file = block.marker.slice('quickstart: file '.length);
        assert.equal(await readFile(path.join(dir, file), 'utf8'), `${block.body}\n`, `README line ${block.line}: ${file} as the README shows it`);
        // From here on, keep parallel runs apart: this run's database names, and no fixed ops port.
        const text = (await readFile(path.join(dir, file), 'utf8')).replace(/database: (shop|reporting)\b/g, (_m, name: string) => `database: ${dbName(name)}`);
        await writeFile(path.join(dir, file), `${text}\nworker: { opsPort: 0 }\n`);
      } else assert.fail(`unknown marker ${block.marker} at README line ${block.line}`);
    }

    // What the walk did, seen in the databases.
    const target = new pg.Client({ connectionString: Object.assign(new URL(ADMIN_URL), { pathname: `/${dbName('reporting')}` }).toString() });
    await target.connect();
    try {
      const orders = await target.query<{ n: number; changed: number }>('select count(*)::int as n, count(*) filter (where total = (id % 100) + 1.5)::int as changed from public.orders');
      assert.deepEqual(orders.rows[0], { n: 999, changed: 10 });
      const totals = await target.query<{ n: number }>("select count(*)::int as n from public.daily_totals where day >= date '2026-11-24'");
      assert.equal(totals.rows[0]?.n, 8, 'seven days of November and the day of the changed rows');
    } finally {
      await target.end();
    }
  });
});
