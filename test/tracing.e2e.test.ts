// OpenTelemetry traces end to end: an OTLP/HTTP receiver in this test, a CLI worker and a CLI
// `sync start --wait` with the standard OTEL_* variables, and the Lakebase emulator for a real M2M
// token exchange. One sync's trace is one connected tree from the CLI's start through the workflow
// and its activities to the SQL statements, the token exchange is its own span, and no secret is
// in any attribute. (Recorded histories replaying with the interceptors bundled: test/replay.test.ts.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { LakebaseEmulator } from '../src/emulator';
import { readFileSync } from 'node:fs';
import { tracingRequested } from '../src/telemetry/tracingSwitch';
import { workflowBundle } from '../src/workflowBundle';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

const SP_SECRET = 'sp-secret-that-must-not-leak-7f3a';
const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');

interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: { key: string; value: OtlpValue }[] }
interface Span { traceId: string; spanId: string; parent: string; name: string; attributes: Record<string, unknown>; service: string }

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let emu: LakebaseEmulator;
let receiver: http.Server;
let endpoint: string;
const bodies: string[] = [];

before(async () => {
  [env, db] = await Promise.all([startTemporal(), createTestDatabase('tracing')]);
  emu = await new LakebaseEmulator({ upstream: ADMIN_URL, servicePrincipals: [{ clientId: 'sp-m2m', clientSecret: SP_SECRET }] }).start();
  await db.client.query('CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 3000) g');
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
});
after(async () => {
  receiver?.close();
  await emu?.stop();
  await db?.close();
  await env?.teardown();
});

function spansOf(): Span[] {
  const out: Span[] = [];
  for (const body of bodies) {
    const doc = JSON.parse(body) as { resourceSpans: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
    for (const rs of doc.resourceSpans) {
      const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans)
        for (const s of ss.spans)
          out.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parent: s.parentSpanId ?? '',
            name: s.name,
            service,
            attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue ?? a.value.doubleValue])),
          });
    }
  }
  return out;
}

function runCli(args: string[], otel: NodeJS.ProcessEnv): { exited: Promise<number | null>; kill(sig: NodeJS.Signals): void } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'error', ...otel } });
  return { exited: new Promise((r) => child.once('exit', (code) => r(code))), kill: (sig) => child.kill(sig) };
}

test('the workflow bundle the worker and test/replay.test.ts use carries the tracing interceptors (on or off)', async () => {
  const code = readFileSync((await workflowBundle()).codePath, 'utf8');
  assert.match(code, /OpenTelemetryInboundInterceptor/);
  assert.match(code, /lakebaseOutcomes/);
});

test('tracing is off by default and on with the standard OTEL_* variables', () => {
  assert.equal(tracingRequested({}), false);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }), false);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }), false);
});

test('one sync is one trace: CLI start → workflow → plan → chunk → SQL, the token exchange its own span, no secret in any attribute', async () => {
  const taskQueue = uniqueQueue('tracing');
  const environment = { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'sp-m2m', ssl: { mode: 'disable' } };
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-tracing-')), 'lakebase.yaml');
  await writeFile(file, YAML.stringify({
    temporal: { address: env.address, taskQueue },
    profiles: { lake: { auth: { method: 'm2m', workspaceHost: emu.workspaceUrl, clientId: 'sp-m2m', clientSecret: '${SP_SECRET}' }, environments: { test: environment } } },
    pipelines: { orders: { source: { profile: 'lake', environment: 'test', table: 'src' }, target: { profile: 'lake', environment: 'test', table: 'dst' }, key: ['id'], batchRows: 1000, parallelism: 2 } },
    worker: { opsPort: 0 },
  }));
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '200', SP_SECRET };
  const worker = runCli(['worker', '--config', file], { ...otel, OTEL_SERVICE_NAME: 'lakebase-worker-test' });
  try {
    const start = runCli(['sync', 'start', '--pipeline', 'orders', '--wait', '--config', file], { ...otel, OTEL_SERVICE_NAME: 'lakebase-cli-test' });
    assert.equal(await start.exited, 0, 'sync start --wait succeeds');
  } finally {
    worker.kill('SIGTERM');
    assert.equal(await worker.exited, 0, 'the worker drains, flushes its spans and exits 0');
  }

  const spans = spansOf();
  const root = spans.find((s) => s.name === 'StartWorkflow:dataSync');
  assert.ok(root, `the CLI's start span; got ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
  assert.equal(root.service, 'lakebase-cli-test');
  const trace = spans.filter((s) => s.traceId === root.traceId);
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  const ancestors = (s: Span): string[] => {
    const names: string[] = [];
    for (let p = byId.get(s.parent); p; p = byId.get(p.parent)) names.push(p.name);
    return names;
  };
  // Connected: every span of the trace leads up to the CLI's start span.
  for (const s of trace) if (s !== root) assert.equal(ancestors(s).at(-1), root.name, `${s.name} hangs off the start span (ancestors: ${ancestors(s).join(' < ')})`);

  const workflow = trace.find((s) => s.name === 'RunWorkflow:dataSync' && s.service === 'lakebase-worker-test');
  assert.ok(workflow, 'the workflow span, exported by the worker');
  const sqlUnder = (activity: RegExp) =>
    trace.filter((s) => /^pg\.(query|connect)/.test(s.name) && ancestors(s).some((a) => activity.test(a)) && ancestors(s).includes('RunWorkflow:dataSync'));
  const planSql = sqlUnder(/^RunActivity:plan/i);
  const chunkSql = sqlUnder(/^RunActivity:\w*chunk/i);
  assert.ok(planSql.length > 0, 'SQL spans under the plan activity');
  assert.ok(chunkSql.length > 0, 'SQL spans under the chunk activities');
  assert.ok(chunkSql.some((s) => /COPY/i.test(String(s.attributes['db.statement'] ?? s.name))), 'the chunk streams with COPY');

  const token = trace.filter((s) => s.name === 'lakebase.token_request');
  assert.equal(token.length, 1, 'one token exchange for the whole sync (the cache serves the rest)');
  assert.deepEqual(token[0]!.attributes, { 'lakebase.profile': 'lake', 'lakebase.auth.method': 'm2m' });
  assert.ok(ancestors(token[0]!).some((a) => a.startsWith('RunActivity:')), 'the exchange runs inside an activity');

  const raw = bodies.join('\n');
  assert.ok(!raw.includes(SP_SECRET), 'the client secret is in no span');
  for (const s of spans) for (const [k, v] of Object.entries(s.attributes)) assert.ok(!/password|secret|token$/i.test(k) || v === undefined, `${s.name}: attribute ${k}`);
});
