// `npm test`: makes sure the real components are there (Temporal CLI, PostgreSQL), runs every
// test file on node's test runner, and ends with one plain "N passed, N failed" line.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findTemporalCli } from '../src/provision/temporal';
import { LOCAL_POSTGRES_URL } from '../src/provision/postgres';

async function testFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath ?? dir, e.name))
    .sort();
}

async function main(): Promise<number> {
  const started = Date.now();
  const cli = await findTemporalCli((m) => console.log(m));
  if (cli) process.env.TEMPORAL_CLI = cli;
  const url = process.env.DATABASE_URL ?? LOCAL_POSTGRES_URL;
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await probe.connect();
    await probe.end();
  } catch (err) {
    console.error(`PostgreSQL is not reachable at ${url.replace(/:[^:@/]+@/, ':***@')} (${(err as Error).message}).`);
    console.error('Start it (pg_ctlcluster … main start) or set DATABASE_URL to a server where this user may create databases.');
    return 1;
  }

  const only = process.argv.slice(2);
  const files = only.length ? only : await testFiles('test');
  const tap = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-tests-')), 'report.tap');
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000',
        '--test-reporter=spec', '--test-reporter-destination=stdout',
        '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
      { stdio: 'inherit' },
    );
    child.on('exit', (c) => resolve(c ?? 1));
  });
  const report = await readFile(tap, 'utf8').catch(() => '');
  const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(report)?.[1] ?? 0);
  const passed = count('pass');
  const failed = count('fail') + count('cancelled');
  console.log(`test run took ${Math.round((Date.now() - started) / 1000)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  return code !== 0 || failed > 0 || passed === 0 ? 1 : 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
