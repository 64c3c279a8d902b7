// `node --import tsx scripts/record-histories.ts <release>`: runs this release's workflows on a real
// Temporal dev server and PostgreSQL and saves their histories under test/replay/histories/<release>/,
// so later releases prove (test/replay.test.ts) that workflows started by this one still replay.
// Run it on a release before changing workflow code; commit what it writes. Names after the release
// (prefixes) save only those histories: a workflow step added in this release, recorded on its own.
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { rawPublicKey } from '../src/auth/signedDecisions';
import { approveJob, jobProgress, startJob, startSync, startSyncGroup } from '../src/client';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import { createTestDatabase, testConfig } from '../test/helpers/db';
import { startTemporal, uniqueQueue } from '../test/helpers/temporal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The job is started by one identity and approved by another, both signed (as the worker requires).
const starter = { by: 'starter', key: generateKeyPairSync('ed25519').privateKey };
const recorder = { by: 'recorder', key: generateKeyPairSync('ed25519').privateKey };

async function main(release: string, only: string[]): Promise<void> {
  const out = path.join(__dirname, '..', 'test', 'replay', 'histories', release);
  await mkdir(out, { recursive: true });
  const env = await startTemporal();
  const db = await createTestDatabase('record');
  const taskQueue = uniqueQueue('record');
  try {
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
      INSERT INTO src SELECT g, 'n' || g, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 3000) g;
      CREATE TABLE dst_full (LIKE src INCLUDING ALL); CREATE TABLE dst_upsert (LIKE src INCLUDING ALL); CREATE TABLE dst_can (LIKE src INCLUDING ALL);
      CREATE TABLE dst_a (LIKE src INCLUDING ALL); CREATE TABLE dst_b (LIKE src INCLUDING ALL); CREATE TABLE audit (note text);
      CREATE TABLE dst_checked (LIKE src INCLUDING ALL); CREATE TABLE dst_resynced (LIKE src INCLUDING ALL);
    `);
    const p = (table: string, more: Record<string, unknown> = {}) => ({
      source: { profile: 'local', environment: 'test', table: 'src' },
      target: { profile: 'local', environment: 'test', table },
      key: ['id'],
      batchRows: 1000,
      ...more,
    });
    const config = testConfig(
      db,
      {
        full: p('dst_full', { mode: 'full-refresh' }),
        fresh: p('dst_fresh'),
        upsert: p('dst_upsert', { cursor: 'updated_at' }),
        can: p('dst_can', { batchRows: 500 }),
        a: p('dst_a'),
        b: p('dst_b'),
        checked: p('dst_checked', { cursor: 'updated_at', deletes: 'hard', verify: 'checksums', batchRows: 500 }),
        resynced: p('dst_resynced', { deletes: 'hard', batchRows: 500 }),
      },
      taskQueue,
      {
        syncGroups: { both: { pipelines: ['a', 'b'], parallelism: 2 } },
        identities: { starter: { publicKey: rawPublicKey(starter.key) }, recorder: { publicKey: rawPublicKey(recorder.key) } },
        jobs: { 'note-it': { profile: 'local', environment: 'test', approval: true, steps: [{ name: 'write', kind: 'write', sql: `INSERT INTO audit VALUES ('noted')` }] } },
      },
    );
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    const save = async (name: string, client: Client, workflowId: string, runId?: string) => {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      if (only.length && !only.some((x) => name.startsWith(x))) return history;
      // protobufjs JSON (enum names, base64 bytes): what historyFromJSON and the Temporal CLI read.
      // (historyToJSON rejects the client's History instance: two protobufjs copies in node_modules.)
      // The workflow id goes along: replay derives child workflow ids from it.
      await writeFile(path.join(out, `${name}.json`), JSON.stringify({ workflowId, history }, null, 1));
      console.log(`saved ${name} (${history.events?.length ?? 0} events)`);
      return history;
    };
    await worker.runUntil(async () => {
      const c = env.client;
      for (const pipeline of ['full', 'upsert']) {
        const h = await startSync(c, { pipeline, taskQueue });
        await h.result();
        await save(`dataSync-${pipeline}`, c, h.workflowId);
      }
      // A dry run (sync start --dry-run) into a target that does not exist.
      const dry = await startSync(c, { pipeline: 'fresh', taskQueue, dryRun: true });
      await dry.result();
      await save('dataSync-dry-run', c, dry.workflowId);
      // A chain of runs: every run but the last ends in continue-as-new.
      const can = await c.workflow.start('dataSync', { taskQueue, workflowId: `sync:can:${Date.now()}`, args: [{ pipeline: 'can', chunksPerRun: 2 }] });
      await can.result();
      let runId: string | undefined = can.firstExecutionRunId;
      for (let run = 1; runId; run++) {
        const history = await save(`dataSync-continue-as-new-run${run}`, c, can.workflowId, runId);
        runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
      const group = await startSyncGroup(c, { group: 'both', taskQueue });
      await group.result();
      const groupHistory = await save('syncGroup', c, group.workflowId);
      for (const e of groupHistory.events ?? []) {
        const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
        if (child?.workflowId) await save(`syncGroup-child-${child.workflowId.split(':')[1]}`, c, child.workflowId);
      }
      const job = await startJob(c, { job: 'note-it', params: {}, taskQueue, config, signingKey: starter.key });
      for (let s = await jobProgress(c, job.workflowId).catch(() => undefined); s?.status !== 'awaiting approval'; s = await jobProgress(c, job.workflowId).catch(() => undefined)) await sleep(50);
      await save('operationalJob-awaiting-approval', c, job.workflowId);
      await approveJob(c, job.workflowId, recorder);
      await job.result();
      await save('operationalJob-approved', c, job.workflowId);
      // Delete detection and verify: a second run after rows left the source, then a verify on its own.
      await (await startSync(c, { pipeline: 'checked', taskQueue })).result();
      await db.client.query(`DELETE FROM src WHERE id % 100 = 1`);
      const checked = await startSync(c, { pipeline: 'checked', taskQueue });
      await checked.result();
      await save('dataSync-deletes-verify', c, checked.workflowId);
      const verify = await c.workflow.start('verifySync', { taskQueue, workflowId: `verify:checked:${Date.now()}`, args: [{ pipeline: 'checked' }] });
      await verify.result();
      await save('verifySync', c, verify.workflowId);
      // Compare-then-copy: a re-sync without cursor of a populated target, after rows changed and left.
      await (await startSync(c, { pipeline: 'resynced', taskQueue })).result();
      await db.client.query(`UPDATE src SET name = name || '*' WHERE id BETWEEN 1500 AND 1520; DELETE FROM src WHERE id BETWEEN 2500 AND 2505`);
      const resynced = await startSync(c, { pipeline: 'resynced', taskQueue });
      await resynced.result();
      await save('dataSync-compare-then-copy', c, resynced.workflowId);
      const tc = await c.workflow.start('testConnection', { taskQueue, workflowId: `test-connection:${Date.now()}`, args: [{ profile: 'local', environment: 'test' }] });
      await tc.result();
      await save('testConnection', c, tc.workflowId);
    });
  } finally {
    await env.teardown();
    await db.close();
  }
}

const release = process.argv[2];
if (!release || !/^[\w.-]+$/.test(release)) {
  console.error('usage: node --import tsx scripts/record-histories.ts <release-name> [history-name-prefix…]');
  process.exit(2);
}
main(release, process.argv.slice(3)).then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
