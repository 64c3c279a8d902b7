// `npm test`: makes sure the real components are there (Temporal CLI, PostgreSQL), runs every
// test file on node's test runner, and ends with one plain "N passed, N failed" line.
//
// PostgreSQL, as the demo finds it: DATABASE_URL (must answer), else the local server
// (postgres@127.0.0.1:5432, trust auth), else an embedded PostgreSQL started here for the run and
// removed after it. The chosen server reaches the test files as DATABASE_URL.
// To act out a machine without PostgreSQL while one runs (it may be shared), point the local
// probe at a closed port:
//   env -u DATABASE_URL LAKEBASE_LOCAL_POSTGRES_URL=postgres://postgres@127.0.0.1:1/postgres npm test
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findTemporalCli } from '../src/provision/temporal';
import { provisionPostgres, type ProvisionedPostgres } from '../src/provision/postgres';

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
  let server: ProvisionedPostgres;
  try {
    server = await provisionPostgres((m) => console.log(m));
  } catch (err) {
    console.error(`No PostgreSQL for the tests: ${(err as Error).message}`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  console.log(`PostgreSQL for the tests: ${server.origin} (${server.url.replace(/:[^:@/]+@/, ':***@')})`);
  process.env.DATABASE_URL = server.url;
  try {
    return await runFiles(started);
  } finally {
    await server.stop();
  }
}

async function runFiles(started: number): Promise<number> {
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
    child.on('error', (err) => {
      console.error(`cannot run the test runner: ${err.message}`);
      resolve(1);
    });
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
