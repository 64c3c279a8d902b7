import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Browser, Page } from 'playwright-core';
import { rawPublicKey } from '../src/auth/signedDecisions';
import { startJob, startSync } from '../src/client';
import type { Config } from '../src/config/schema';
import { createLogger } from '../src/logger';
import { temporalExecutable } from '../src/provision/temporal';
import { LAKEBASE_SEARCH_ATTRIBUTES } from '../src/workflows/searchAttributes';
import { CHROMIUM, launchChromium } from './helpers/browser';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const ARTIFACTS = path.join(__dirname, 'artifacts');
const DOC_IMAGES = path.join(__dirname, '..', 'docs', 'img');

describe('what an operator sees in the Temporal UI (headless Chromium)', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM} (.ci/run installs it)` }, () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let browser: Browser;
  let page: Page;
  let ui: string;
  let config: Config;
  let stopWorker: () => Promise<void>;
  const ids: { sync?: string; job?: string; failed?: string; waiting?: string } = {};

  before(async () => {
    await startTemporal().then((e) => e.teardown()); // installs the quiet runtime logger once
    const executable = await temporalExecutable();
    env = await TestWorkflowEnvironment.createLocal({ server: { executable, ui: true, searchAttributes: LAKEBASE_SEARCH_ATTRIBUTES, log: { format: 'pretty', level: 'error' } } });
    ui = `http://localhost:${Number(env.address.split(':').pop()) + 1000}`;
    db = await createTestDatabase('ui');
    await db.client.query(`
      CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2)); INSERT INTO orders SELECT g, g / 3.0 FROM generate_series(1, 5000) g;
      CREATE TABLE reporting_orders (LIKE orders INCLUDING ALL);
      CREATE TABLE daily (day date PRIMARY KEY, n int);
    `);
    const local = { profile: 'local', environment: 'test' };
    // An approval job needs identities whose signatures count; this one may be started unsigned (allowSelfApproval).
    const approver = { publicKey: rawPublicKey(generateKeyPairSync('ed25519').privateKey) };
    config = testConfig(db, { 'orders-to-reporting': { source: { ...local, table: 'orders' }, target: { ...local, table: 'reporting_orders' }, key: ['id'], batchRows: 1000 } }, 'ui', {
      identities: { approver },
      jobs: {
        'refresh-aggregates': { ...local, params: { day: { type: 'date' } }, steps: [{ name: 'fill', kind: 'write', sql: 'INSERT INTO daily VALUES (:day, 1) ON CONFLICT (day) DO UPDATE SET n = daily.n + 1' }] },
        'approve-refresh': { ...local, approval: true, allowSelfApproval: true, params: {}, steps: [{ name: 'fill', kind: 'write', sql: 'SELECT 1' }] },
        'archive-orders': { ...local, params: { days: { type: 'integer' } }, steps: [{ name: 'archive', kind: 'write', sql: 'DELETE FROM orders WHERE id = 1 / (:days::int - :days::int)' }] },
      },
    });
    // The worker keeps running: the UI asks it (a query) for the current details.
    ({ stop: stopWorker } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue: 'ui' }));
    const sync = await startSync(env.client, { pipeline: 'orders-to-reporting', taskQueue: 'ui', config });
    await sync.result();
    ids.sync = sync.workflowId;
    const job = await startJob(env.client, { job: 'refresh-aggregates', params: { day: '2026-11-24' }, taskQueue: 'ui', config });
    await job.result();
    ids.job = job.workflowId;
    const failed = await startJob(env.client, { job: 'archive-orders', params: { days: 90 }, taskQueue: 'ui', config });
    await failed.result().catch(() => undefined);
    ids.failed = failed.workflowId;
    const waiting = await startJob(env.client, { job: 'approve-refresh', params: {}, taskQueue: 'ui', config });
    ids.waiting = waiting.workflowId;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(() =>
    cleanUp(
      () => browser?.close(),
      () => stopWorker?.(),
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  async function shot(name: string, forDocs = false) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
    if (forDocs && process.env.UPDATE_DOC_IMAGES) await page.screenshot({ path: path.join(DOC_IMAGES, `${name}.png`) });
  }

  const workflowPage = (id: string) => `${ui}/namespaces/default/workflows/${encodeURIComponent(id)}`;

  test('the sync and the jobs are listed by their descriptive ids', async () => {
    await page.goto(`${ui}/namespaces/default/workflows`);
    for (const id of [ids.sync!, ids.job!, ids.failed!]) await page.getByText(id, { exact: true }).waitFor({ timeout: 30_000 });
    await shot('workflows-list', true);
  });

  test('a filter on LakebasePipeline returns the sync and nothing else', async () => {
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`LakebasePipeline="orders-to-reporting"`)}`);
    await page.getByText(ids.sync!, { exact: true }).waitFor({ timeout: 30_000 });
    assert.equal(await page.getByText(ids.job!, { exact: true }).count(), 0, 'the job is filtered out');
    await shot('filter-by-pipeline', true);
  });

  test('the sync shows its summary and details', async () => {
    await page.goto(workflowPage(ids.sync!));
    await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 30_000 });
    await page.getByRole('link', { name: 'User Metadata' }).or(page.getByRole('tab', { name: 'User Metadata' })).first().click();
    // Summary, details and current details are markdown, rendered in frames of their own.
    const text = async () => (await Promise.all(page.frames().map((f) => f.textContent('body').catch(() => '')))).join('\n').replace(/\s+/g, ' ');
    for (let i = 0; i < 100 && !/mode upsert/.test(await text()); i++) await page.waitForTimeout(200);
    const all = await text();
    assert.match(all, /Sync orders-to-reporting \(upsert\) orders → reporting_orders on local\/test/);
    assert.match(all, /Pipeline orders-to-reporting — mode upsert/);
    assert.match(all, /source local test orders/);
    await shot('sync-user-metadata', true);
  });

  test('a running job shows its current details: awaiting approval', async () => {
    await page.goto(workflowPage(ids.waiting!));
    await page.getByText('Running', { exact: true }).first().waitFor({ timeout: 30_000 });
    await page.getByRole('link', { name: 'User Metadata' }).or(page.getByRole('tab', { name: 'User Metadata' })).first().click();
    const text = async () => (await Promise.all(page.frames().map((f) => f.textContent('body').catch(() => '')))).join('\n').replace(/\s+/g, ' ');
    for (let i = 0; i < 100 && !/awaiting approval before fill/.test(await text()); i++) await page.waitForTimeout(200);
    await shot('job-awaiting-approval', true);
    assert.match(await text(), /Paused, awaiting approval before fill — job approve-refresh on local\/test: awaiting approval, 0\/1 steps done, 0 rows written/);
  });

  test("a failed job shows the failure's type and message", async () => {
    await page.goto(workflowPage(ids.failed!));
    await page.getByText('Failed', { exact: true }).first().waitFor({ timeout: 30_000 });
    await page.getByText(/division by zero/).first().waitFor({ timeout: 15_000 });
    const body = ((await page.textContent('body')) ?? '').replace(/\s+/g, ' ');
    assert.match(body, /job archive-orders, step archive failed: division by zero; SQLSTATE 22012/);
    assert.match(body, /LakebaseDataError/);
    await shot('failed-job', true);
  });
});
