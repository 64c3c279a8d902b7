// `node --import tsx bench/cdc-worker.ts [rows]`: the worker's memory while it streams, as it ships: a
// real `lakebase-worker worker` process (the image's node flags, or BENCH_WORKER_NODE_FLAGS) on a
// Temporal dev server streams one cdc pipeline of an embedded PostgreSQL (wal_level=logical); its
// peak RSS (VmHWM) at start, after the initial load, after a burst updating half the rows in one
// transaction, and after a mixed burst. Figures are printed, never asserted (bench/cdc-bench.ts runs
// the engine in-process, beside native replication, for speed).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { cdcProgress, startCdc, stopCdc } from '../src/client/cdc';
import { parseConfig } from '../src/config/load';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import { startTemporal, uniqueQueue } from '../test/helpers/temporal';
import { startWorkerProcess, workerNodeFlags } from './worker-process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function main() {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdcw-'));
  const cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical' } });
  await cluster.init();
  const [env] = await Promise.all([startTemporal(), cluster.start()]);
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query('CREATE DATABASE dst');
  await admin.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84)); INSERT INTO accounts SELECT g, g % 10, 0, '' FROM generate_series(1, ${rows}) g`);
  const dst = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/dst') });
  await dst.connect();
  const taskQueue = uniqueQueue('cdcw');
  const e = (database: string) => ({ host: '127.0.0.1', port: cluster.options.port, database, user: 'postgres', ssl: { mode: 'disable' } });
  const raw = {
    temporal: { address: env.address, taskQueue },
    worker: { opsPort: 0 },
    profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { src: e('postgres'), dst: e('dst') } } },
    pipelines: { acc: { source: { profile: 'local', environment: 'src', table: 'accounts' }, target: { profile: 'local', environment: 'dst', table: 'accounts' }, mode: 'cdc', key: ['aid'], parallelism: 4, cdc: { batchRows: 20000, batchMs: 500 } } },
  };
  const file = path.join(base, 'lakebase.yaml');
  await writeFile(file, YAML.stringify(raw));
  const config = parseConfig(raw);
  const w = await startWorkerProcess(env.client, file, taskQueue);
  console.log('flags', workerNodeFlags().join(' ') || "(Node's defaults)", 'startup', w.startupPeakRssMb, 'MB');
  await startCdc(env.client, { config, pipeline: 'acc', taskQueue });
  for (let p = (await cdcProgress(env.client, config, 'acc')).progress; !p || p.pipelines.acc !== 'streaming'; p = (await cdcProgress(env.client, config, 'acc')).progress) await sleep(200);
  await sleep(3000);
  console.log('after initial load', w.peakRssMb(), 'MB');
  const sum = async (c: pg.Client) => (await c.query('SELECT sum(abalance)::bigint AS s FROM accounts')).rows[0].s as string;
  const t0 = Date.now();
  await admin.query('UPDATE accounts SET abalance = abalance + 1 WHERE aid % 2 = 0');
  const want = await sum(admin);
  while ((await sum(dst)) !== want) await sleep(200);
  console.log('burst of', rows / 2, 'updates applied in', ((Date.now() - t0) / 1000).toFixed(2), 's; peak', w.peakRssMb(), 'MB');
  await admin.query(`BEGIN; INSERT INTO accounts SELECT g, 1, 0, '' FROM generate_series(${rows + 1}, ${rows + 100000}) g; DELETE FROM accounts WHERE aid <= 100000; COMMIT`);
  const want2 = (await admin.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n;
  while ((await dst.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n !== want2) await sleep(200);
  console.log('mixed burst applied; peak', w.peakRssMb(), 'MB');
  await stopCdc(env.client, { config, pipeline: 'acc', dropSlot: true });
  await w.stop();
  await Promise.all([admin.end(), dst.end()]);
  await env.teardown();
  await cluster.stop();
  await rm(base, { recursive: true, force: true });
}
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
