// `lakebase-worker init` and `lakebase-worker config check`, through the CLI as a user runs them:
// no Temporal, no database. The starter file must pass the same loading the worker does, for every
// --auth; config check must exit 0/1, name every problem by its path and never print a secret.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { loadConfigFile } from '../src/config/load';
import { INIT_AUTH_METHODS } from '../src/cli/init';
import { runCli, shown } from './helpers/cli';

/** Values for the variables the starter file references; the secrets must never be printed. */
const SECRET_TOKEN = 'dapi0123456789abcdef0123456789abcd';
const SECRET_CLIENT = 'client-secret-5f0c1e9a';
const starterEnv: NodeJS.ProcessEnv = {
  DATABRICKS_TOKEN: SECRET_TOKEN,
  DATABRICKS_HOST: 'https://dbc-1234.cloud.databricks.com',
  DATABRICKS_CLIENT_ID: '6f1f5b0e-sp',
  DATABRICKS_CLIENT_SECRET: SECRET_CLIENT,
  LAKEBASE_HOST: 'instance-1.database.cloud.databricks.com',
  LAKEBASE_STAGING_HOST: 'instance-2.database.cloud.databricks.com',
  LAKEBASE_USER: 'svc@example.com',
};

describe('lakebase-worker init', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-init-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const auth of INIT_AUTH_METHODS) {
    test(`--auth ${auth}: a commented starter that loads as the worker loads it, ${auth} active, the other methods as comments`, async () => {
      const file = path.join(dir, `lakebase-${auth}.yaml`);
      const r = await runCli(['init', '--auth', auth, '--config', file]);
      assert.equal(r.code, 0, shown(r));
      assert.match(r.stdout, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(auth: ${auth}\\)`));
      assert.match(r.stdout, /lakebase-worker config check --config /);
      const text = await readFile(file, 'utf8');
      const warnings: string[] = [];
      const config = loadConfigFile(file, starterEnv, (w) => warnings.push(w));
      const [profile, ...others] = Object.values(config.profiles);
      assert.ok(profile);
      assert.equal(others.length, 0, 'one profile');
      assert.equal(profile.auth.method, auth);
      assert.deepEqual(Object.keys(profile.environments), auth === 'none' ? ['shop', 'reporting'] : ['prod', 'staging']);
      assert.deepEqual(Object.values(config.pipelines).map((p) => p.mode).sort(), ['cdc', 'upsert']);
      assert.equal(Object.keys(config.jobs).length, 1);
      // The other two methods are there, commented out.
      // A Lakebase starter shows the other two methods commented out; the local one points at them.
      for (const other of auth === 'none' ? [] : INIT_AUTH_METHODS.filter((m) => m !== auth && m !== 'none'))
        assert.match(text, new RegExp(`^\\s*#\\s*(auth: \\{ )?method: ${other}`, 'm'), `${other} shown as a comment`);
      assert.equal(text.match(/^\s*(auth: \{ )?method: /gm)?.length ?? 0, 1, 'one active auth method');
      if (auth === 'none') assert.match(text, /^ {4}# For Lakebase: method pat, m2m or federation \(lakebase-worker init --auth pat\|m2m\|federation\)\.$/m);
      // Secrets only as ${ENV} references: every secret-looking key's value is a reference.
      const uncommented = text.replace(/#.*$/gm, '');
      for (const m of uncommented.matchAll(/\b(token|clientSecret|password|apiKey):\s*(\$\{[^}]*\}|[^,}\s]+)/g)) assert.match(m[2] ?? '', /^\$\{[A-Z_]+\}$/, `${m[1]}: ${m[2]}`);
      assert.doesNotMatch(text, /dapi[0-9a-f]{8}/);
    });
  }

  test('refuses to overwrite an existing file without --force, and overwrites it with --force', async () => {
    const file = path.join(dir, 'existing.yaml');
    await writeFile(file, 'profiles: {}\n# mine\n');
    const refused = await runCli(['init', '--config', file]);
    assert.equal(refused.code, 1, shown(refused));
    assert.match(refused.stderr, /existing\.yaml exists; not overwriting it \(pass --force to replace it\)/);
    assert.equal(await readFile(file, 'utf8'), 'profiles: {}\n# mine\n', 'the file is untouched');
    const forced = await runCli(['init', '--force', '--auth', 'm2m', '--config', file]);
    assert.equal(forced.code, 0, shown(forced));
    assert.match(await readFile(file, 'utf8'), /^ {4}auth: \{ method: m2m/m);
  });

  test('an unknown --auth is refused naming the choices', async () => {
    const r = await runCli(['init', '--auth', 'oauth', '--config', path.join(dir, 'never.yaml')]);
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr, /argument 'oauth' is invalid\. Allowed choices are pat, m2m, federation, none/);
  });
});

describe('lakebase-worker config check', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-configcheck-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a valid config: exit 0, its profiles, environments, pipelines and jobs resolved, every secret masked', async () => {
    const file = path.join(dir, 'starter.yaml');
    assert.equal((await runCli(['init', '--auth', 'm2m', '--config', file])).code, 0);
    // An inline secret (not a reference) and a Temporal API key: masked too.
    const inline = path.join(dir, 'inline.yaml');
    const text = (await readFile(file, 'utf8')).replace('taskQueue: lakebase', 'taskQueue: lakebase\n  apiKey: temporal-api-key-inline-7d1e');
    await writeFile(inline, text.replace('clientSecret: ${DATABRICKS_CLIENT_SECRET}', 'clientSecret: inline-secret-0a9b8c'));
    // Temporal on a closed port and hosts that do not resolve: nothing is contacted.
    const env = { ...starterEnv, TEMPORAL_ADDRESS: '127.0.0.1:1' };
    for (const f of [file, inline]) {
      const r = await runCli(['config', 'check', '--config', f], { env });
      assert.equal(r.code, 0, shown(r));
      assert.match(r.stdout, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: valid$`, 'm'));
      assert.match(r.stdout, /^temporal: 127\.0\.0\.1:1, namespace default, task queue lakebase/m);
      assert.match(r.stdout, /^ {2}analytics: auth \{ method: m2m, workspaceHost: https:\/\/dbc-1234\.cloud\.databricks\.com, clientId: 6f1f5b0e-sp, clientSecret: \*\*\*/m);
      assert.match(r.stdout, /^ {4}prod: svc@example\.com@instance-1\.database\.cloud\.databricks\.com:5432\/databricks_postgres, ssl verify-full/m);
      assert.match(r.stdout, /^ {4}staging: /m);
      assert.match(r.stdout, /^ {2}orders: upsert, analytics\/prod public\.orders -> analytics\/prod reporting\.orders; key \[id\], cursor updated_at, deletes hard, verify counts/m);
      assert.match(r.stdout, /^ {2}orders-cdc: cdc, /m);
      assert.match(r.stdout, /^ {2}daily-totals: analytics\/prod; params since \(date\); 3 steps: prepare \(sql\), clear \(write\), fill \(write\)$/m);
      for (const secret of [SECRET_CLIENT, 'inline-secret-0a9b8c', 'temporal-api-key-inline-7d1e'])
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `${secret} printed:\n${shown(r)}`);
    }
  });

  test('an invalid config: exit 1, every problem named by its path, nothing claimed valid', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(
      file,
      YAML.stringify({
        profiles: { a: { auth: { method: 'pat', token: 'dapi-not-shown-1234567' }, environments: { prod: { host: 'h', user: 'u', port: 'abc', hots: 'x' } } } },
        pipelines: { p: { source: { profile: 'a', environment: 'prod', table: 't' }, target: { profile: 'a', environment: 'prod', table: 'u' }, mode: 'merge', key: ['id'] } },
        jobs: { j: { profile: 'a', environment: 'prod', steps: [{ name: 's', kind: 'write' }] } },
      }),
    );
    const r = await runCli(['config', 'check', '--config', file]);
    assert.equal(r.code, 1, shown(r));
    assert.doesNotMatch(r.stdout, /valid/);
    for (const at of ['profiles.a.environments.prod.port', 'profiles.a.environments.prod.hots', 'pipelines.p.mode', 'jobs.j.steps.0'])
      assert.match(r.stderr, new RegExp(`^ {2}${at.replace(/\./g, '\\.')}\\b`, 'm'), `${at} named:\n${shown(r)}`);
    assert.ok(!r.stderr.includes('dapi-not-shown-1234567'), shown(r));
  });

  test('a pipeline naming a profile that does not exist: exit 1, the configured ones listed', async () => {
    const file = path.join(dir, 'unknown-profile.yaml');
    await writeFile(
      file,
      YAML.stringify({
        profiles: { a: { auth: { method: 'pat', token: 'x' }, environments: { prod: { host: 'h', user: 'u' } } } },
        pipelines: { p: { source: { profile: 'a', environment: 'prod', table: 't' }, target: { profile: 'b', environment: 'prod', table: 'u' }, key: ['id'] } },
      }),
    );
    const r = await runCli(['config', 'check', '--config', file]);
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr, /^ {2}pipelines\.p\.target\.profile: .*"b".*\ba\b/m, shown(r));
  });

  test('a missing file: exit 1 naming it', async () => {
    const r = await runCli(['config', 'check', '--config', path.join(dir, 'nope.yaml')]);
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr, /cannot read .*nope\.yaml: ENOENT/);
  });
});
