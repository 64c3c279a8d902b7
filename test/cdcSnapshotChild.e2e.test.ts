// Issue 27 finding 10 and §3: a cdc pipeline's initial load is a child workflow of the slot's
// stream, with its own continue-as-new, so the stream's history stays the size of its segments
// however many chunks the table takes; `cdc status` shows the child's figures while it copies, and
// the other pipeline of the slot streams all along. A real Temporal dev server and worker, an
// embedded PostgreSQL with wal_level=logical.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type pg from 'pg';
import { awaitJoin, cdcProgress, cdcWorkflowId, startCdc, stopCdc } from '../src/client/cdc';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import { cdcSnapshotWorkflowId } from '../src/workflows/cdcSnapshot';
import { cleanUp } from './helpers/cleanup';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROWS = 40_000;
const BATCH = 500;
const CHUNKS_PER_RUN = 8;

describe('cdc initial load as a child workflow (Temporal dev server, embedded PostgreSQL with wal_level=logical)', () => {
  let env: TestWorkflowEnvironment;
  let server: LogicalServer;
  let source: pg.Client;
  let target: pg.Client;
  let worker: { stop(): Promise<void> } | undefined;
  let config: Config;
  let taskQueue: string;

  before(async () => {
    [env, server] = await Promise.all([startTemporal(), startLogicalServer('cdc-child', { databases: ['shop', 'reporting'] })]);
    ({ source, target } = server);
    await source.query(`
      CREATE TABLE live (id int PRIMARY KEY, v text);
      INSERT INTO live SELECT g, 'a' || g FROM generate_series(1, 200) g;
      CREATE TABLE big (id int PRIMARY KEY, v text, body text);
      INSERT INTO big SELECT g, 'b' || g, repeat(md5(g::text), 4) FROM generate_series(1, ${ROWS}) g;`);
    taskQueue = uniqueQueue('cdcchild');
    const pipeline = (table: string) => ({
      source: { profile: 'local', environment: 'shop', table },
      target: { profile: 'local', environment: 'reporting', table },
      mode: 'cdc',
      key: ['id'],
      batchRows: BATCH,
      parallelism: 2,
      cdc: { slot: 'lbw_child', batchRows: 2000, batchMs: 200 },
    });
    config = parseConfig({
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { shop: server.environment('shop'), reporting: server.environment('reporting') } } },
      pipelines: { live: pipeline('live'), big: pipeline('big') },
    });
    worker = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
  });

  after(() =>
    cleanUp(
      () => worker?.stop(),
      () => server?.close(),
      () => env?.teardown(),
    ),
  );

  const equal = async (table: string, columns: string[]) => {
    const [a, b] = await Promise.all([relationChecksum(source, table, columns, ['id']), relationChecksum(target, table, columns, ['id']).catch(() => null)]);
    return !!b && a.rows === b.rows && a.md5 === b.md5;
  };
  async function converged(table: string, columns: string[], ms = 120_000) {
    for (const deadline = Date.now() + ms; !(await equal(table, columns)); await sleep(300)) if (Date.now() > deadline) assert.fail(`${table}: target did not converge within ${ms / 1000} s`);
  }

  test('a joining table copies in a child workflow that continues as new; the stream history stays small, status shows the copy, the other pipeline streams on', async () => {
    const c = env.client;
    const stream = { runSeconds: 600, snapshotChunksPerRun: CHUNKS_PER_RUN };
    await startCdc(c, { config, pipeline: 'live', taskQueue, stream });
    assert.equal((await awaitJoin(c, { workflowId: cdcWorkflowId('lbw_child'), pipeline: 'live' })).joined, true);
    await converged('live', ['id', 'v']);

    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await source.query(`UPDATE live SET v = 'w${i}' WHERE id = ${(i % 200) + 1}`);
        await source.query(`UPDATE big SET v = 'changed ${i}' WHERE id = ${(i * 7919) % ROWS + 1}`);
        if (i % 5 === 0) await source.query(`DELETE FROM big WHERE id = ${ROWS - i}`);
        await sleep(25);
      }
    })();
    await startCdc(c, { config, pipeline: 'big', taskQueue, stream });
    // While it copies: status has the child's figures, and the live table keeps reaching the target.
    const seen: number[] = [];
    let liveWhileCopying = false;
    for (const deadline = Date.now() + 180_000; ; await sleep(150)) {
      assert.ok(Date.now() < deadline, 'big did not start streaming within 180 s');
      const p = (await cdcProgress(c, config, 'big')).progress;
      if (p?.pipelines.big === 'streaming') break;
      const s = p?.snapshots.big;
      if (s) {
        seen.push(s.rowsCopied);
        if (!liveWhileCopying && s.rowsCopied > 0) {
          const v = (await source.query<{ v: string }>(`SELECT v FROM live WHERE id = 1`)).rows[0]!.v;
          for (const until = Date.now() + 20_000; Date.now() < until && !liveWhileCopying; await sleep(200))
            liveWhileCopying = (await target.query<{ v: string }>(`SELECT v FROM live WHERE id = 1`)).rows[0]?.v === v;
        }
      }
    }
    writing = false;
    await writer;
    await converged('big', ['id', 'v', 'body']);
    await converged('live', ['id', 'v']);
    assert.ok(seen.some((n) => n > 0 && n <= ROWS), `cdc status showed the child's rows copied while it ran (seen: ${seen.slice(-5).join(', ') || 'none'})`);
    assert.ok(liveWhileCopying, 'the live pipeline streamed while big copied');

    // The load's chain: more than one run, none with more chunk activities than its share.
    const childId = cdcSnapshotWorkflowId(cdcWorkflowId('lbw_child'), 'big');
    const runs: { chunks: number; events: number }[] = [];
    for await (const w of c.workflow.list({ query: `WorkflowId = '${childId}'` })) {
      const h = await c.workflow.getHandle(childId, w.runId).fetchHistory();
      runs.push({ chunks: (h.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'cdcLoadChunk').length, events: h.events?.length ?? 0 });
    }
    const chunks = runs.reduce((n, r) => n + r.chunks, 0);
    assert.ok(chunks >= ROWS / BATCH, `the load took ${chunks} chunks`);
    assert.ok(runs.length >= 3, `the load continued as new (${runs.length} runs)`);
    // The lanes (parallelism 2) still in flight when the run's share is reached finish first.
    for (const r of runs) assert.ok(r.chunks <= CHUNKS_PER_RUN + 1, `a run scheduled ${r.chunks} chunks (at most ${CHUNKS_PER_RUN} + the other lane's)`);
    // The stream itself scheduled none of them: its history does not grow with the table.
    const streamHistory = await c.workflow.getHandle(cdcWorkflowId('lbw_child')).fetchHistory();
    const types = (streamHistory.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.equal(types.filter((t) => t === 'cdcLoadChunk').length, 0, `the stream scheduled chunks itself: ${types.join(', ')}`);
    assert.ok((streamHistory.events?.length ?? 0) < 150, `stream history has ${streamHistory.events?.length} events`);

    await stopCdc(c, { config, pipeline: 'big', dropSlot: false });
    await stopCdc(c, { config, pipeline: 'live', dropSlot: true });
  });
});
