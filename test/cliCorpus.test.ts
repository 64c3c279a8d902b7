// The CLI as a user meets it: each case in test/corpus/cli/ is a config, a command line, and the
// exit code and text the user must see (test/corpus/cli/*.yaml). Real components behind it: a
// Temporal dev server (one with our search attributes, one without), a worker, PostgreSQL, the
// Lakebase emulator with a real IdP.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { z } from 'zod';
import { parseConfigText } from '../src/config/load';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { freePort } from '../src/provision/postgres';
import { temporalExecutable } from '../src/provision/temporal';
import { formatProgress } from '../src/progress';
import { createLakebaseWorker } from '../src/worker';
import type { SyncProgress } from '../src/workflows';
import { cleanUp } from './helpers/cleanup';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { startIdp, type TestIdp } from './helpers/idp';
import { startTemporal, uniqueQueue } from './helpers/temporal';

const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
const DIR = path.join(__dirname, 'corpus', 'cli');
const NEEDS = ['temporal', 'bareTemporal', 'worker', 'database', 'emulator', 'takenPort'] as const;

const caseSchema = z.strictObject({
  description: z.string(),
  needs: z.array(z.enum(NEEDS)).default([]),
  config: z.string(),
  args: z.array(z.string()).min(1),
  exit: z.int(),
  stdout: z.array(z.string()).default([]),
  stderr: z.array(z.string()).default([]),
  notStdout: z.array(z.string()).default([]),
  notStderr: z.array(z.string()).default([]),
  maxStderrLines: z.int().optional(),
});
type CliCase = z.infer<typeof caseSchema>;

/** Never acceptable on stderr, in any case: a stack trace, the SDK's raw transport or service errors. */
const NEVER = [/^\s+at .*\(.*:\d+:\d+\)$/m, /tonic::/, /ServiceError/, /\[object Object\]/, /^Error: /m];

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({ file: f, c: caseSchema.parse(YAML.parse(readFileSync(path.join(DIR, f), 'utf8'))) }));

function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, LAKEBASE_CONFIG: '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('CLI corpus: exit codes and messages a user sees (test/corpus/cli)', () => {
  const needed = new Set(cases.flatMap(({ c }) => c.needs));
  const vars: Record<string, string> = {};
  let env: TestWorkflowEnvironment | undefined;
  let bare: TestWorkflowEnvironment | undefined;
  let db: TestDatabase | undefined;
  let idp: TestIdp | undefined;
  let emu: LakebaseEmulator | undefined;
  let squatter: net.Server | undefined;
  let dir: string;
  const logger = createLogger({ level: 'error' });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-cli-corpus-'));
    vars.CLOSED_PORT = String(await freePort());
    if (needed.has('temporal') || needed.has('worker')) env = await startTemporal();
    if (env) vars.TEMPORAL = env.address;
    if (needed.has('bareTemporal')) {
      // A namespace where `setup` never ran: no Lakebase search attributes.
      bare = await TestWorkflowEnvironment.createLocal({ server: { executable: await temporalExecutable(), log: { format: 'pretty', level: 'error' } } });
      vars.BARE_TEMPORAL = bare.address;
    }
    if (needed.has('database') || needed.has('emulator')) {
      db = await createTestDatabase('clicorpus');
      const u = new URL(db.url);
      const restricted = `lbw_nocreate_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
      await db.client.query(`
        CREATE TABLE src (id int PRIMARY KEY, label text); INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 50) g;
        CREATE TABLE dst (id int PRIMARY KEY, label text); CREATE TABLE dst_ok (id int PRIMARY KEY, label text);
        CREATE ROLE ${restricted} LOGIN;
        REVOKE CREATE ON DATABASE ${db.name} FROM PUBLIC;
        GRANT SELECT ON src TO ${restricted}; GRANT ALL ON dst TO ${restricted};`);
      Object.assign(vars, { DB: db.name, DB_HOST: u.hostname, DB_PORT: u.port || '5432', RESTRICTED_USER: restricted });
    }
    if (needed.has('emulator')) {
      idp = await startIdp([{ clientId: 'alice-short', email: 'alice@example.com', ttlSeconds: 1 }]);
      emu = await new LakebaseEmulator({
        upstream: ADMIN_URL,
        federationPolicies: [{ name: 'account-wide', issuer: idp.issuer, audiences: ['databricks'], subjectClaim: 'email' }],
      }).start();
      vars.EXPIRED_JWT = await idp.token('alice-short');
      await new Promise((r) => setTimeout(r, 2_100));
      Object.assign(vars, { WORKSPACE: emu.workspaceUrl, EMU_HOST: emu.postgres.host, EMU_PORT: String(emu.postgres.port) });
    }
    if (needed.has('takenPort')) {
      squatter = net.createServer();
      await new Promise<void>((r) => squatter!.listen(0, r));
      vars.TAKEN_PORT = String((squatter.address() as net.AddressInfo).port);
    }
  });

  after(() =>
    cleanUp(
      () => squatter?.close(),
      () => emu?.stop(),
      () => idp?.stop(),
      () => db?.client.query(`DROP OWNED BY ${vars.RESTRICTED_USER}`).catch(() => undefined),
      () => db?.close(),
      async () => {
        if (!vars.RESTRICTED_USER) return;
        const pg = (await import('pg')).default;
        const admin = new pg.Client({ connectionString: ADMIN_URL });
        await admin.connect();
        await admin.query(`DROP ROLE IF EXISTS ${vars.RESTRICTED_USER}`);
        await admin.end();
      },
      () => bare?.teardown(),
      () => env?.teardown(),
    ),
  );

  for (const { file, c } of cases) {
    test(`${file}: ${c.description}`, async () => {
      const caseVars: Record<string, string> = { ...vars, TASK_QUEUE: uniqueQueue(file.replace(/\.yaml$/, '')) };
      const configText = c.config.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => caseVars[k] ?? assert.fail(`${file}: no value for {{${k}}}`));
      caseVars.CONFIG = path.join(dir, file);
      await writeFile(caseVars.CONFIG, configText);
      const args = c.args.map((a) => a.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => caseVars[k] ?? assert.fail(`${file}: no value for {{${k}}}`)));
      const run = async () => cli(args);
      const r = c.needs.includes('worker')
        ? await (async () => {
            const worker = await createLakebaseWorker({ config: parseConfigText(configText, caseVars.CONFIG!, {}), logger, connection: env!.nativeConnection, sealingKeys: [] });
            return worker.runUntil(run);
          })()
        : await run();
      const shown = `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
      assert.equal(r.code, c.exit, shown);
      for (const re of c.stdout) assert.match(r.stdout, new RegExp(re, 'm'), shown);
      for (const re of c.stderr) assert.match(r.stderr, new RegExp(re, 'm'), shown);
      for (const re of c.notStdout) assert.doesNotMatch(r.stdout, new RegExp(re, 'm'), shown);
      for (const re of [...c.notStderr.map((s) => new RegExp(s, 'm')), ...NEVER]) assert.doesNotMatch(r.stderr, re, shown);
      if (c.maxStderrLines !== undefined) assert.ok(r.stderr.trim().split('\n').length <= c.maxStderrLines, `at most ${c.maxStderrLines} stderr line(s)\n${shown}`);
    });
  }

  test('a worker registers the search attributes where the namespace allows it (dev server), and later starts need no fallback', async (t) => {
    if (!bare) return t.skip('no case needs the dev server without search attributes');
    const file = path.join(dir, 'register.yaml');
    await writeFile(file, `temporal: { address: "${bare!.address}", taskQueue: register }\nprofiles:\n  a: { auth: { method: pat, token: x }, environments: { prod: { host: h, user: u } } }\nworker: { opsPort: 0 }\n` +
        'pipelines:\n  p: { source: { profile: a, environment: prod, table: public.s }, target: { profile: a, environment: prod, table: public.t }, key: [id] }\n');
    const child = execFile(process.execPath, [CLI, 'worker', '--config', file]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!/worker started/.test(out)) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `the worker did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(out, /registered search attributes on the namespace/);
      const { customAttributes } = await bare!.connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of ['LakebaseProfile', 'LakebaseEnvironment', 'LakebasePipeline', 'LakebaseJob', 'LakebaseRowsWritten']) assert.ok(customAttributes?.[name], `${name} registered`);
      const again = await cli(['sync', 'start', '--pipeline', 'p', '--config', file]);
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /warning/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  test('while a sync plans, the progress line says "planning", not "0% 0/0 rows"', () => {
    const p: SyncProgress = {
      pipeline: 'orders', mode: 'planning', cursor: null, chunks: 0, rowsCopied: 0, rowsWritten: 0, estimatedRows: 0, rowsPerSecond: 0, etaSeconds: null,
      run: 1, resumed: false, initialLoad: false, done: false, waitingForRelogin: false, tokens: [], startedAt: 0,
    };
    assert.equal(formatProgress(p), 'orders: planning (reading columns, cursor and row estimate)…');
    assert.match(formatProgress({ ...p, mode: 'upsert', estimatedRows: 10, rowsCopied: 5 }), /^orders: 50% 5\/10 rows/);
  });
});
