// The dashboard (deploy/grafana) and the alert rules (deploy/prometheus): promtool checks and unit
// tests for every alert, and every metric a panel or rule names is one a running worker exports
// (scraped from a real `lakebase-worker worker` process after it ran a sync and a failing one).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { findGoTool, missingGoTool } from '../src/provision/goTools';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

const run = promisify(execFile);
const DEPLOY = path.join(__dirname, '..', 'deploy');
const RULES = path.join(DEPLOY, 'prometheus', 'alerts.yaml');

/**
 * Metrics the dashboard and rules name before the worker exports them, each with the reason. The
 * scrape test fails once one of them is exported (then it leaves this list) and for any other
 * name the worker lacks.
 */
const PENDING: Record<string, string> = {};

interface Panel { type: string; title: string; id: number; datasource?: unknown; targets?: { expr: string }[]; panels?: Panel[] }
interface Dashboard { title: string; uid: string; panels: Panel[]; templating: { list: { name: string; definition?: string }[] } }

const dashboards = ['lakebase-worker.json'].map((f) => JSON.parse(readFileSync(path.join(DEPLOY, 'grafana', f), 'utf8')) as Dashboard);
const rules = (YAML.parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);

/** The metric names in PromQL text (ours all start with lakebase_; histogram series map to the histogram). */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(/\blakebase_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

function namedByDashboards(): Map<string, string[]> {
  const named = new Map<string, string[]>();
  const add = (name: string, where: string) => named.set(name, [...(named.get(name) ?? []), where]);
  for (const d of dashboards) {
    const walk = (ps: Panel[]) => ps.forEach((p) => { p.targets?.forEach((t) => metricNames(t.expr).forEach((n) => add(n, `${d.uid}: ${p.title}`))); walk(p.panels ?? []); });
    walk(d.panels);
    d.templating.list.forEach((v) => metricNames(v.definition ?? '').forEach((n) => add(n, `${d.uid}: variable ${v.name}`)));
  }
  for (const r of rules) metricNames(r.expr).forEach((n) => add(n, `alert ${r.alert}`));
  return named;
}

describe('dashboard and alert rules', () => {
  test('the dashboard: panels for every area the runbook needs, each on the Prometheus data source variable', () => {
    for (const d of dashboards) {
      const panels = d.panels.filter((p) => p.type !== 'row');
      assert.equal(new Set(d.panels.map((p) => p.id)).size, d.panels.length, 'panel ids are unique');
      for (const p of panels) {
        assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: data source`);
        assert.ok(p.targets?.length, `${p.title}: has queries`);
      }
      const titles = panels.map((p) => p.title).join('\n');
      for (const area of [/Rows written per second, by pipeline/, /outcomes, by failure type/, /Token requests/, /refused logins/, /Verify mismatches/, /budget/, /CDC lag/, /Retained WAL/])
        assert.match(titles, area);
    }
    const named = namedByDashboards();
    for (const [name, reason] of Object.entries(PENDING)) assert.ok(named.has(name) && reason, `${name} is pending but nothing names it: drop it from PENDING`);
  });

  test('every dashboard query is valid PromQL (checked by promtool as recording rules)', { skip: missingGoTool('promtool') }, async () => {
    const exprs = dashboards.flatMap((d) => {
      const all: string[] = [];
      const walk = (ps: Panel[]) => ps.forEach((p) => { p.targets?.forEach((t) => all.push(t.expr)); walk(p.panels ?? []); });
      walk(d.panels);
      return all;
    });
    // Grafana's variables, as Grafana would substitute them.
    const concrete = exprs.map((e) => e.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*').replaceAll('$pipeline', '.*'));
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-panels-')), 'panels.yaml');
    await writeFile(file, YAML.stringify({ groups: [{ name: 'panels', rules: concrete.map((expr, i) => ({ record: `panel:query_${i}`, expr })) }] }));
    const { stdout } = await run(findGoTool('promtool')!, ['check', 'rules', file]);
    assert.match(stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
  });

  test('promtool check rules', { skip: missingGoTool('promtool') }, async () => {
    const { stdout } = await run(findGoTool('promtool')!, ['check', 'rules', RULES]);
    assert.match(stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  test('promtool test rules: each alert has a unit test, and they pass', { skip: missingGoTool('promtool') }, async () => {
    const tests = path.join(DEPLOY, 'prometheus', 'alerts.test.yaml');
    const tested = new Set([...readFileSync(tests, 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    for (const r of rules) assert.ok(tested.has(r.alert), `${r.alert} has a unit test in alerts.test.yaml`);
    const { stdout } = await run(findGoTool('promtool')!, ['test', 'rules', tests], { cwd: path.dirname(tests) });
    assert.match(stdout, /SUCCESS/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('a running worker exports every metric the dashboard and rules name', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let child: ChildProcess | undefined;
  let port: number;
  let taskQueue: string;

  before(async () => {
    env = await startTemporal();
    db = await createTestDatabase('observe');
    await db.client.query('CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 500) g');
    taskQueue = uniqueQueue('observe');
    port = await freePort();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-observe-'));
    const file = path.join(dir, 'lakebase.yaml');
    const endpoint = (table: string) => ({ profile: 'local', environment: 'test', table });
    await writeFile(file, YAML.stringify({
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
      pipelines: {
        orders: { source: endpoint('src'), target: endpoint('dst'), key: ['id'], verify: 'counts' },
        broken: { source: endpoint('no_such_table'), target: endpoint('dst_broken'), key: ['id'] },
      },
      worker: { opsPort: port },
    }));
    child = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await db?.close();
    await env?.teardown();
  });

  async function scrape(): Promise<string> {
    for (let i = 0; ; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
      if (r?.ok) return r.text();
      if (i > 600) throw new Error('the worker never served /metrics');
      await sleep(100);
    }
  }

  test('after a sync and a failing sync, /metrics has every name', async () => {
    await scrape();
    await env.client.workflow.execute('dataSync', { taskQueue, workflowId: `sync:orders:${Date.now()}`, args: [{ pipeline: 'orders' }] });
    await env.client.workflow.execute('dataSync', { taskQueue, workflowId: `sync:broken:${Date.now()}`, args: [{ pipeline: 'broken' }] }).then(
      () => assert.fail('a sync from a missing table fails'),
      () => undefined,
    );
    const text = await scrape();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const missing: string[] = [];
    for (const [name, where] of namedByDashboards()) {
      if (PENDING[name]) assert.ok(!exported.has(name), `${name} is exported now: remove it from PENDING`);
      else if (!exported.has(name)) missing.push(`${name} (${[...new Set(where)].join('; ')})`);
    }
    assert.deepEqual(missing, [], 'named by a panel or rule but not exported');
    // The values behind the panels, from this worker's work.
    assert.match(text, /^lakebase_rows_written_total\{pipeline="orders"\} 500$/m);
    assert.match(text, /^lakebase_workflow_outcomes_total\{workflow_type="dataSync",name="orders",outcome="completed",failure_type=""\} 1$/m);
    assert.match(text, /^lakebase_workflow_outcomes_total\{workflow_type="dataSync",name="broken",outcome="failed",failure_type="\w+"\} 1$/m);
    assert.match(text, /^lakebase_worker_polling 1$/m);
    assert.match(text, /^lakebase_pool_max_connections\{profile="local",environment="test"\} 10$/m);
    assert.match(text, /^lakebase_pool_connections\{profile="local",environment="test",state="open"\} \d+$/m);
  });
});
