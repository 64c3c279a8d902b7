import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { loadConfigFile, loadDocument } from '../src/config/load';
import { emulatorOptionsSchema } from '../src/emulator/options';
import { missingTool } from './helpers/tools';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('CLI', () => {
  test('--help works on every command', async () => {
    for (const args of [
      [], ['worker'], ['sync'], ['sync', 'start'], ['sync', 'relogin'], ['sync', 'group'], ['status'], ['list'], ['setup'], ['demo'], ['emulator'], ['bundle'], ['codec-server'], ['test-connection'],
      ['job'], ['job', 'run'], ['job', 'approve'], ['job', 'reject'], ['job', 'cancel'],
      ['schedule'], ['schedule', 'create'], ['schedule', 'list'], ['schedule', 'describe'], ['schedule', 'pause'], ['schedule', 'unpause'], ['schedule', 'trigger'], ['schedule', 'backfill'], ['schedule', 'delete'],
    ]) {
      const r = await cli([...args, '--help']);
      assert.equal(r.code, 0, `${args.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /Usage: lakebase-worker/);
    }
  });

  test('a built checkout runs the compiled CLI; LAKEBASE_WORKER_FROM_SOURCE runs the sources', async (t) => {
    if (!existsSync(path.join(__dirname, '..', 'dist', '.built'))) return t.skip('dist/ is not built here (npm ci builds it through the prepare script)');
    const fresh = await cli(['--help'], { LAKEBASE_WORKER_TRACE_ENTRY: '1' });
    assert.equal(fresh.code, 0);
    assert.match(fresh.stderr, /running dist\/cli\/main/);
    const forced = await cli(['--help'], { LAKEBASE_WORKER_TRACE_ENTRY: '1', LAKEBASE_WORKER_FROM_SOURCE: '1' });
    assert.match(forced.stderr, /running src\/cli\/main/);
    assert.equal(forced.stdout, fresh.stdout, 'both entries define the same commands');
  });

  test('an invalid config file exits 1 with the path of the problem', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-cli-'));
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'profiles:\n  a:\n    auth: { method: pat, token: x }\n    environments:\n      prod: { host: h, user: u, port: abc }\n');
    const r = await cli(['sync', 'start', '--pipeline', 'p', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /profiles\.a\.environments\.prod\.port: expected an integer 1–65535, got "abc"/);
  });

  test('job parameters are checked before anything connects', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-cli-'));
    const file = path.join(dir, 'jobs.yaml');
    await writeFile(
      file,
      'profiles:\n  a:\n    auth: { method: pat, token: x }\n    environments: { prod: { host: h, user: u } }\n' +
        'jobs:\n  refresh:\n    profile: a\n    environment: prod\n    params: { day: { type: date } }\n    steps: [ { name: s, sql: "select :day" } ]\n',
    );
    const r = await cli(['job', 'run', '--job', 'refresh', '--param', 'day=2026-02-30', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /day: expected a real calendar date, got "2026-02-30"/);
  });

  test('an unknown pipeline is named before anything connects', async () => {
    const r = await cli(['sync', 'start', '--pipeline', 'nope', '--config', 'examples/lakebase.yaml'], {
      DATABRICKS_TOKEN: 't', LAKEBASE_HOST: 'h', LAKEBASE_USER: 'u',
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--pipeline: unknown pipeline "nope"; configured: orders-to-reporting/);
  });
});

describe('shipped files', () => {
  const env = { DATABRICKS_TOKEN: 't', LAKEBASE_HOST: 'h.example.com', LAKEBASE_USER: 'u@example.com' };
  test('examples/lakebase.yaml and the compose config are valid', () => {
    assert.equal(loadConfigFile('examples/lakebase.yaml', env).pipelines['orders-to-reporting']!.mode, 'upsert');
    assert.equal(loadDocument('examples/emulator.yaml', emulatorOptionsSchema, {}).servicePrincipals[0]!.clientSecret, 'change-me');
  });

  test('docker-compose.yml passes `docker-compose config -q` (with the .env.example variables set)', { skip: missingTool('docker-compose') }, async () => {
    const { stderr } = await run('docker-compose', ['config', '-q'], { env: { ...process.env, LAKEBASE_SECRET_KEYS: 'k', LAKEBASE_CODEC_TOKEN: 't', TEMPORAL_DB_PASSWORD: 'p', DATA_DB_PASSWORD: 'p', EMULATOR_SP_SECRET: 's' } });
    assert.equal(stderr.trim(), '');
    const missing = await run('docker-compose', ['config', '-q'], { env: { PATH: process.env.PATH } }).then(() => '', (e: { stderr: string }) => e.stderr);
    assert.match(missing, /set [A-Z_]+ in \.env/, 'the stack refuses to start without its secrets');
    for (const v of ['LAKEBASE_SECRET_KEYS', 'LAKEBASE_CODEC_TOKEN', 'EMULATOR_SP_SECRET']) assert.match(readFileSync('.env.example', 'utf8'), new RegExp(`^${v}=`, 'm'));
  });

  test('the compose configs for the worker and the emulator are valid', () => {
    const env = { TEMPORAL_ADDRESS: 'temporal:7233', WORKSPACE_HOST: 'http://lakebase-emulator:8765', LAKEBASE_HOST: 'lakebase-emulator', EMULATOR_SP_SECRET: 's', DATABASE_URL: 'postgres://u:p@h/d' };
    const cfg = loadConfigFile('docker/lakebase.compose.yaml', env);
    assert.equal(cfg.temporal.encryptPayloads, true);
    assert.equal(loadDocument('docker/emulator.compose.yaml', emulatorOptionsSchema, env).servicePrincipals[0]!.clientId, cfg.profiles.analytics!.auth.method === 'm2m' ? cfg.profiles.analytics!.auth.clientId : '');
  });
});
