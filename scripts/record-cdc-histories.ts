// `node --import tsx scripts/record-cdc-histories.ts <release>`: runs a cdcStream (a copy in a child workflow that continues as new, changes,
// continue-as-new, stop --drop-slot; then, on a second slot, a join that ends a running segment, with figures signals) on a real Temporal dev server and an embedded PostgreSQL with
// wal_level=logical (the shared server runs replica), and saves its histories under
// test/replay/histories/<release>/ for test/replay.test.ts. Separate from record-histories.ts,
// which needs no logical replication.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { cdcProgress, startCdc, stopCdc } from '../src/client/cdc';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import { createLakebaseWorker } from '../src/worker';
import { cdcSnapshotWorkflowId } from '../src/workflows/cdcSnapshot';
import { startTemporal, uniqueQueue } from '../test/helpers/temporal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(release: string): Promise<void> {
  const out = path.join(__dirname, '..', 'test', 'replay', 'histories', release);
  await mkdir(out, { recursive: true });
  const base = await mkdtemp(path.join(os.tmpdir(), 'lbw-record-cdc-'));
  const cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical' } });
  await cluster.init();
  const [env] = await Promise.all([startTemporal(), cluster.start()]);
  const db = new pg.Client({ connectionString: cluster.url });
  try {
    await db.connect();
    await db.query(`CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 3000) g`);
    // A second pipeline of the slot whose copy cannot succeed (its target's v is an int): it is parked, the first streams on.
    await db.query(`CREATE TABLE src2 (id int PRIMARY KEY, v text); INSERT INTO src2 SELECT g, 'w' || g FROM generate_series(1, 100) g; CREATE TABLE dst2 (id int PRIMARY KEY, v int)`);
    await db.query(`CREATE TABLE src3 (id int PRIMARY KEY, v text); CREATE TABLE src4 (id int PRIMARY KEY, v text); INSERT INTO src3 SELECT g, 'x' FROM generate_series(1, 200) g; INSERT INTO src4 SELECT g, 'y' FROM generate_series(1, 200) g`);
    const taskQueue = uniqueQueue('record-cdc');
    const environment = { host: '127.0.0.1', port: cluster.options.port, database: 'postgres', user: 'postgres', ssl: { mode: 'disable' } };
    const config = parseConfig({
      temporal: { taskQueue },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { test: environment } } },
      pipelines: {
        recorded: { source: { profile: 'local', environment: 'test', table: 'src' }, target: { profile: 'local', environment: 'test', table: 'dst' }, mode: 'cdc', key: ['id'], batchRows: 1000, cdc: { batchMs: 200 } },
        parked: { source: { profile: 'local', environment: 'test', table: 'src2' }, target: { profile: 'local', environment: 'test', table: 'dst2' }, mode: 'cdc', key: ['id'], batchRows: 1000, cdc: { batchMs: 200 } },
        long: { source: { profile: 'local', environment: 'test', table: 'src3' }, target: { profile: 'local', environment: 'test', table: 'dst3' }, mode: 'cdc', key: ['id'], batchRows: 1000, cdc: { slot: 'lbw_record_join', batchMs: 200 } },
        joiner: { source: { profile: 'local', environment: 'test', table: 'src4' }, target: { profile: 'local', environment: 'test', table: 'dst4' }, mode: 'cdc', key: ['id'], batchRows: 1000, cdc: { slot: 'lbw_record_join', batchMs: 200 } },
      },
    });
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    await worker.runUntil(async () => {
      const c = env.client;
      // One chunk per run of the initial load's child workflow (patch cdc-snapshot-child): its continue-as-new is recorded too.
      const { workflowId } = await startCdc(c, { config, pipeline: 'recorded', taskQueue, stream: { runSeconds: 1, segmentsPerRun: 3, snapshotChunksPerRun: 1 } });
      for (let p = (await cdcProgress(c, config, 'recorded')).progress; !p || p.pipelines.recorded !== 'streaming'; p = (await cdcProgress(c, config, 'recorded')).progress) await sleep(100);
      await startCdc(c, { config, pipeline: 'parked', taskQueue, stream: { runSeconds: 1, segmentsPerRun: 3 } });
      for (let p = (await cdcProgress(c, config, 'recorded')).progress; !p || p.pipelines.parked !== 'parked'; p = (await cdcProgress(c, config, 'recorded')).progress) await sleep(100);
      await db.query(`UPDATE src SET v = 'changed' WHERE id % 10 = 0; DELETE FROM src WHERE id > 2900`);
      for (let p = (await cdcProgress(c, config, 'recorded')).progress; !p || p.run < 2; p = (await cdcProgress(c, config, 'recorded')).progress) await sleep(100);
      await stopCdc(c, { config, pipeline: 'parked', dropSlot: true });
      await stopCdc(c, { config, pipeline: 'recorded', dropSlot: true });
      // The first run of a chain (the oldest run of the id), then each run's successor.
      const saveChain = async (id: string, prefix: string) => {
        let first: { runId: string; start: number } | undefined;
        for await (const w of c.workflow.list({ query: `WorkflowId = '${id}'` }))
          if (!first || w.startTime.getTime() < first.start) first = { runId: w.runId, start: w.startTime.getTime() };
        let runId: string | undefined = first?.runId;
        for (let run = 1; runId; run++) {
          const history = await c.workflow.getHandle(id, runId).fetchHistory();
          const name = `${prefix}-run${run}`;
          await writeFile(path.join(out, `${name}.json`), JSON.stringify({ workflowId: id, history }, null, 1));
          console.log(`saved ${name} (${history.events?.length ?? 0} events)`);
          runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
        }
      };
      await saveChain(workflowId, 'cdcStream');
      await saveChain(cdcSnapshotWorkflowId(workflowId, 'recorded'), 'cdcSnapshot');
      // A join signalled into a segment of 600 s ends it (patch cdc-join-ends-segment), then both
      // stream; the running segments send their figures (cdcFigures signals) each second they change.
      const joined = await startCdc(c, { config, pipeline: 'long', taskQueue, stream: { runSeconds: 600, figuresSeconds: 1 } });
      for (let p = (await cdcProgress(c, config, 'long')).progress; !p || p.pipelines.long !== 'streaming'; p = (await cdcProgress(c, config, 'long')).progress) await sleep(100);
      await db.query(`UPDATE src3 SET v = 'before the join' WHERE id <= 5`);
      await sleep(3_000);
      await startCdc(c, { config, pipeline: 'joiner', taskQueue, stream: { runSeconds: 600, figuresSeconds: 1 } });
      for (let p = (await cdcProgress(c, config, 'long')).progress; !p || p.pipelines.joiner !== 'streaming'; p = (await cdcProgress(c, config, 'long')).progress) await sleep(100);
      await db.query(`UPDATE src3 SET v = 'changed' WHERE id <= 10; UPDATE src4 SET v = 'changed' WHERE id <= 10`);
      await sleep(3_000);
      await stopCdc(c, { config, pipeline: 'joiner', dropSlot: true });
      await stopCdc(c, { config, pipeline: 'long', dropSlot: true });
      const history = await c.workflow.getHandle(joined.workflowId).fetchHistory();
      await writeFile(path.join(out, 'cdcStream-join-ends-segment.json'), JSON.stringify({ workflowId: joined.workflowId, history }, null, 1));
      console.log(`saved cdcStream-join-ends-segment (${history.events?.length ?? 0} events)`);
    });
  } finally {
    await db.end().catch(() => undefined);
    await env.teardown();
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
  }
}

const release = process.argv[2];
if (!release || !/^[\w.-]+$/.test(release)) {
  console.error('usage: node --import tsx scripts/record-cdc-histories.ts <release-name>');
  process.exit(2);
}
main(release).then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
