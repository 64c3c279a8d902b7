import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfigFile, parseConfig, parseConfigText } from '../src/config/load';

const validProfile = () => ({
  auth: { method: 'pat', token: 'dapi-secret-value' },
  environments: { prod: { host: 'instance-1.database.cloud.databricks.com', user: 'svc@example.com' } },
});
const validPipeline = () => ({
  source: { profile: 'analytics', environment: 'prod', table: 'public.orders' },
  target: { profile: 'analytics', environment: 'prod', table: 'reporting.orders' },
  key: ['id'],
});
const valid = () => ({ profiles: { analytics: validProfile() }, pipelines: { 'orders-to-reporting': validPipeline() } });

function problemsOf(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(raw, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.flatMap((p) => p.split('\n  '));
  }
  assert.fail('config was accepted');
}

function expectProblem(raw: unknown, expected: RegExp, env?: NodeJS.ProcessEnv) {
  const problems = problemsOf(raw, env);
  assert.ok(problems.some((p) => expected.test(p)), `no problem matched ${expected}; got:\n${problems.join('\n')}`);
}

describe('config validation', () => {
  test('a valid config gets documented defaults', () => {
    const cfg = parseConfig(valid(), {});
    const env = cfg.profiles.analytics!.environments.prod!;
    assert.equal(env.port, 5432);
    assert.equal(env.database, 'databricks_postgres');
    assert.equal(env.ssl.mode, 'verify-full');
    assert.equal(cfg.temporal.taskQueue, 'lakebase');
    assert.equal(cfg.pipelines['orders-to-reporting']!.mode, 'upsert');
  });

  test('port that is not a number', () => {
    const raw = valid();
    (raw.profiles.analytics.environments.prod as Record<string, unknown>).port = 'abc';
    expectProblem(raw, /^profiles\.analytics\.environments\.prod\.port: expected an integer 1–65535, got "abc"$/);
  });

  test('port out of range', () => {
    const raw = valid();
    (raw.profiles.analytics.environments.prod as Record<string, unknown>).port = 70000;
    expectProblem(raw, /^profiles\.analytics\.environments\.prod\.port: expected an integer 1–65535, got 70000$/);
  });

  test('port from an env var is accepted as a number', () => {
    const raw = valid();
    (raw.profiles.analytics.environments.prod as Record<string, unknown>).port = '${PGPORT}';
    assert.equal(parseConfig(raw, { PGPORT: '6543' }).profiles.analytics!.environments.prod!.port, 6543);
  });

  test('missing host', () => {
    const raw = valid();
    delete (raw.profiles.analytics.environments.prod as Record<string, unknown>).host;
    expectProblem(raw, /^profiles\.analytics\.environments\.prod\.host: expected host, or project, branch and endpoint of a Lakebase Autoscaling compute$/);
  });

  test('unknown auth method', () => {
    const raw = valid();
    (raw.profiles.analytics.auth as Record<string, unknown>).method = 'password123';
    expectProblem(raw, /^profiles\.analytics\.auth\.method: expected method: pat, m2m, federation, databricks, password or none, got "password123"$/);
  });

  test('pat without token or tokenFile', () => {
    const raw = valid();
    delete (raw.profiles.analytics.auth as Record<string, unknown>).token;
    expectProblem(raw, /^profiles\.analytics\.auth: expected exactly one of token or tokenFile/);
  });

  test('wrong type of token is reported without echoing the value', () => {
    const raw = valid();
    (raw.profiles.analytics.auth as Record<string, unknown>).token = 123456789;
    const problems = problemsOf(raw);
    assert.ok(problems.some((p) => p.startsWith('profiles.analytics.auth.token:')), problems.join('\n'));
    assert.ok(!problems.join('\n').includes('123456789'), 'the secret value leaked into the message');
  });

  test('unknown key (typo) names the key', () => {
    const raw = valid();
    (raw.profiles.analytics.environments.prod as Record<string, unknown>).hots = 'x';
    expectProblem(raw, /^profiles\.analytics\.environments\.prod\.hots: unknown key; remove it or check its spelling$/);
  });

  test('bad ssl mode', () => {
    const raw = valid();
    (raw.profiles.analytics.environments.prod as Record<string, unknown>).ssl = { mode: 'prefer' };
    expectProblem(raw, /^profiles\.analytics\.environments\.prod\.ssl\.mode: expected one of disable, require, verify-ca, verify-full, got "prefer"$/);
  });

  test('profile with no environments', () => {
    const raw = valid();
    (raw.profiles.analytics as Record<string, unknown>).environments = {};
    expectProblem(raw, /^profiles\.analytics\.environments: expected at least one environment/);
  });

  test('pipeline naming an unknown profile', () => {
    const raw = valid();
    raw.pipelines['orders-to-reporting'].target.profile = 'reporting';
    expectProblem(raw, /^pipelines\.orders-to-reporting\.target\.profile: unknown profile "reporting"; defined profiles: analytics$/);
  });

  test('pipeline naming an unknown environment', () => {
    const raw = valid();
    raw.pipelines['orders-to-reporting'].source.environment = 'staging';
    expectProblem(raw, /^pipelines\.orders-to-reporting\.source\.environment: profile "analytics" has no environment "staging"; defined: prod$/);
  });

  test('bad sync mode', () => {
    const raw = valid();
    (raw.pipelines['orders-to-reporting'] as Record<string, unknown>).mode = 'merge';
    expectProblem(raw, /^pipelines\.orders-to-reporting\.mode: expected one of full-refresh, append, upsert, cdc, got "merge"$/);
  });

  test('mode cdc: a key, a source table, no SQL transforms, and a slot name PostgreSQL accepts', () => {
    const raw = valid();
    const p = raw.pipelines['orders-to-reporting'] as Record<string, unknown>;
    p.mode = 'cdc';
    delete p.key;
    p.transform = { columns: { cents: 'total * 100' } };
    p.cdc = { slot: 'Orders-Slot' };
    expectProblem(raw, /^pipelines\.orders-to-reporting\.key: mode cdc applies changes by key/);
    expectProblem(raw, /^pipelines\.orders-to-reporting\.transform: mode cdc copies columns as they are/);
    expectProblem(raw, /^pipelines\.orders-to-reporting\.cdc\.slot: expected a replication slot name/);
  });

  test('empty key list', () => {
    const raw = valid();
    raw.pipelines['orders-to-reporting'].key = [];
    expectProblem(raw, /^pipelines\.orders-to-reporting\.key: expected at least one key column/);
  });

  test('source with both table and query', () => {
    const raw = valid();
    (raw.pipelines['orders-to-reporting'].source as Record<string, unknown>).query = 'select 1';
    expectProblem(raw, /^pipelines\.orders-to-reporting\.source: give table or query, not both$/);
  });

  test('batchRows zero', () => {
    const raw = valid();
    (raw.pipelines['orders-to-reporting'] as Record<string, unknown>).batchRows = 0;
    expectProblem(raw, /^pipelines\.orders-to-reporting\.batchRows: expected a chunk size \(integer 1–10000000\), got 0$/);
  });

  test('an unset ${ENV} reference names the variable and the path', () => {
    const raw = valid();
    raw.profiles.analytics.auth.token = '${DATABRICKS_TOKEN}';
    expectProblem(raw, /^profiles\.analytics\.auth\.token: environment variable DATABRICKS_TOKEN is not set/, {});
  });

  test('${ENV:-default} falls back', () => {
    const raw = valid();
    raw.profiles.analytics.environments.prod.host = '${LAKEBASE_HOST:-fallback.example.com}';
    assert.equal(parseConfig(raw, {}).profiles.analytics!.environments.prod!.host, 'fallback.example.com');
  });

  test('every problem is reported at once', () => {
    const raw = valid();
    (raw.profiles.analytics.environments.prod as Record<string, unknown>).port = 'abc';
    (raw.pipelines['orders-to-reporting'] as Record<string, unknown>).mode = 'merge';
    assert.equal(problemsOf(raw).length, 2);
  });
});

describe('config files', () => {
  test('YAML file with env interpolation', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-config-'));
    const file = path.join(dir, 'lakebase.yaml');
    await writeFile(
      file,
      `profiles:\n  analytics:\n    auth: { method: pat, token: \${DATABRICKS_TOKEN} }\n    environments:\n      prod: { host: h.example.com, user: u }\n`,
    );
    const cfg = loadConfigFile(file, { DATABRICKS_TOKEN: 'dapi123' });
    const auth = cfg.profiles.analytics!.auth;
    assert.equal(auth.method === 'pat' && auth.token, 'dapi123');
  });

  test('YAML syntax error names the file', () => {
    assert.throws(() => parseConfigText('profiles: [unclosed', '/x/lakebase.yaml', {}), (err: Error) => {
      assert.match(err.message, /invalid \/x\/lakebase\.yaml/);
      assert.match(err.message, /\(syntax\)/);
      return true;
    });
  });

  test('missing file says so', () => {
    assert.throws(() => loadConfigFile('/nonexistent/lakebase.yaml', {}), /cannot read \/nonexistent\/lakebase\.yaml: ENOENT/);
  });
  const fedProfile = (tokenFile: string, more = '') =>
    `profiles:\n  fed:\n    auth:\n      method: federation\n      workspaceHost: https://dbc-1.cloud.databricks.com\n      subjectToken: { source: static, tokenFile: ${tokenFile}${more} }\n    environments:\n      prod: { host: h.example.com, user: u }\n`;

  test('a …File setting naming a missing file is reported first, naming the config and the file, before any other problem', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-config-'));
    const file = path.join(dir, 'lakebase.yaml');
    await writeFile(file, `profiles:\n  a:\n    auth: { method: password, passwordFile: ${dir}/gone }\n    environments:\n      prod: { host: h.example.com, user: u, port: abc }\n`);
    assert.throws(() => loadConfigFile(file, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems[0], `profiles.a.auth.passwordFile: cannot read ${dir}/gone (ENOENT); fix the path or create the file`);
      assert.match(err.problems[1]!, /^profiles\.a\.environments\.prod\.port: /, 'the other problems follow');
      assert.ok(err.message.startsWith(`invalid ${file}:`));
      return true;
    });
  });

  test('a readable …File passes; a federation token file the platform writes later (tokenFileWrittenLater) is a warning', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-config-'));
    const file = path.join(dir, 'lakebase.yaml');
    await writeFile(path.join(dir, 'idp.jwt'), 'eyJ.test.jwt');
    await writeFile(file, fedProfile(path.join(dir, 'idp.jwt')));
    const warnings: string[] = [];
    assert.ok(loadConfigFile(file, {}, (m) => warnings.push(m)).profiles.fed);
    assert.equal(warnings.length, 0);
    await writeFile(file, fedProfile(path.join(dir, 'later.jwt'), ', tokenFileWrittenLater: true'));
    assert.ok(loadConfigFile(file, {}, (m) => warnings.push(m)).profiles.fed);
    assert.deepEqual(warnings, [`${file}: profiles.fed.auth.subjectToken.tokenFile: cannot read ${dir}/later.jwt (ENOENT); tokenFileWrittenLater is set, so it is read when first needed`]);
    await writeFile(file, fedProfile(path.join(dir, 'later.jwt')));
    assert.throws(() => loadConfigFile(file, {}), /subjectToken\.tokenFile: cannot read .*later\.jwt \(ENOENT\)/, 'without the option it is an error');
  });
});
