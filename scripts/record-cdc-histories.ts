// `node --import tsx scripts/record-cdc-histories.ts <release>`: runs a cdcStream (a copy, changes,
// continue-as-new, stop --drop-slot) on a real Temporal dev server and an embedded PostgreSQL with
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
    const taskQueue = uniqueQueue('record-cdc');
    const environment = { host: '127.0.0.1', port: cluster.options.port, database: 'postgres', user: 'postgres', ssl: { mode: 'disable' } };
    const config = parseConfig({
      temporal: { taskQueue },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { test: environment } } },
      pipelines: {
        recorded: { source: { profile: 'local', environment: 'test', table: 'src' }, target: { profile: 'local', environment: 'test', table: 'dst' }, mode: 'cdc', key: ['id'], batchRows: 1000, cdc: { batchMs: 200 } },
        parked: { source: { profile: 'local', environment: 'test', table: 'src2' }, target: { profile: 'local', environment: 'test', table: 'dst2' }, mode: 'cdc', key: ['id'], batchRows: 1000, cdc: { batchMs: 200 } },
      },
    });
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    await worker.runUntil(async () => {
      const c = env.client;
      const { workflowId } = await startCdc(c, { config, pipeline: 'recorded', taskQueue, stream: { runSeconds: 1, segmentsPerRun: 3 } });
      for (let p = (await cdcProgress(c, config, 'recorded')).progress; !p || p.pipelines.recorded !== 'streaming'; p = (await cdcProgress(c, config, 'recorded')).progress) await sleep(100);
      await startCdc(c, { config, pipeline: 'parked', taskQueue, stream: { runSeconds: 1, segmentsPerRun: 3 } });
      for (let p = (await cdcProgress(c, config, 'recorded')).progress; !p || p.pipelines.parked !== 'parked'; p = (await cdcProgress(c, config, 'recorded')).progress) await sleep(100);
      await db.query(`UPDATE src SET v = 'changed' WHERE id % 10 = 0; DELETE FROM src WHERE id > 2900`);
      for (let p = (await cdcProgress(c, config, 'recorded')).progress; !p || p.run < 2; p = (await cdcProgress(c, config, 'recorded')).progress) await sleep(100);
      await stopCdc(c, { config, pipeline: 'parked', dropSlot: true });
      await stopCdc(c, { config, pipeline: 'recorded', dropSlot: true });
      // The first run of the chain (the oldest run of the id), then each run's successor.
      let first: { runId: string; start: number } | undefined;
      for await (const w of c.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        if (!first || w.startTime.getTime() < first.start) first = { runId: w.runId, start: w.startTime.getTime() };
      let runId: string | undefined = first?.runId;
      for (let run = 1; runId; run++) {
        const history = await c.workflow.getHandle(workflowId, runId).fetchHistory();
        const name = `cdcStream-run${run}`;
        await writeFile(path.join(out, `${name}.json`), JSON.stringify({ workflowId, history }, null, 1));
        console.log(`saved ${name} (${history.events?.length ?? 0} events)`);
        runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
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
