// `node --import tsx bench/cdc-worker.ts [rows]`: the worker's memory while it streams, as it ships: a
// real `lakebase-worker worker` process (the image's node flags, or BENCH_WORKER_NODE_FLAGS) on a
// Temporal dev server streams one cdc pipeline of an embedded PostgreSQL (wal_level=logical); its
// peak RSS (VmHWM) at start, after the initial load, after a burst updating half the rows in one
// transaction, and after a mixed burst. Figures are printed, never asserted (bench/cdc-bench.ts runs
// the engine in-process, beside native replication, for speed).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { cdcProgress, startCdc, stopCdc } from '../src/client/cdc';
import { parseConfig } from '../src/config/load';
import { startLogicalServer } from '../test/helpers/logicalServer';
import { startTemporal, uniqueQueue } from '../test/helpers/temporal';
import { ACCOUNTS_DDL } from './accounts';
import { startWorkerProcess, workerNodeFlags } from './worker-process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export interface WorkerStreamRss {
  /** The worker's node flags. */
  flags: string[];
  rows: number;
  startupMb: number | null;
  afterLoadMb: number | null;
  /** After a burst updating half the rows in one transaction. */
  burstMb: number | null;
  /** Commit to the target's sum matching the source's (checked every 200 ms). */
  burstSeconds: number;
  /** After a mixed burst (a tenth of the rows inserted and as many deleted, in one transaction). */
  mixedMb: number | null;
}

/** A real worker process streaming one cdc pipeline of `rows` rows: its peak RSS at each step. */
export async function workerStreamRss(rows: number, say: (m: string) => void = console.log): Promise<WorkerStreamRss> {
  const [env, server] = await Promise.all([startTemporal(), startLogicalServer('cdcw', { databases: ['src', 'dst'] })]);
  const { source, target } = server;
  try {
    await source.query(ACCOUNTS_DDL);
    await source.query(`INSERT INTO accounts SELECT g, g % 10, 0, '' FROM generate_series(1, $1::int) g`, [rows]);
    const taskQueue = uniqueQueue('cdcw');
    const raw = {
      temporal: { address: env.address, taskQueue },
      worker: { opsPort: 0 },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { src: server.environment('src'), dst: server.environment('dst') } } },
      pipelines: { acc: { source: { profile: 'local', environment: 'src', table: 'accounts' }, target: { profile: 'local', environment: 'dst', table: 'accounts' }, mode: 'cdc', key: ['aid'], parallelism: 4, cdc: { batchRows: 20000, batchMs: 500 } } },
    };
    const file = path.join(server.dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(raw));
    const config = parseConfig(raw);
    const w = await startWorkerProcess(env.client, file, taskQueue);
    try {
      const flags = workerNodeFlags();
      await startCdc(env.client, { config, pipeline: 'acc', taskQueue });
      for (let p = (await cdcProgress(env.client, config, 'acc')).progress; !p || p.pipelines.acc !== 'streaming'; p = (await cdcProgress(env.client, config, 'acc')).progress) await sleep(200);
      await sleep(3000);
      const afterLoadMb = w.peakRssMb();
      const caughtUp = async (sql: string) => {
        const want = (await source.query(sql)).rows[0].v as string;
        while ((await target.query(sql)).rows[0].v !== want) await sleep(200);
      };
      const t0 = Date.now();
      await source.query('UPDATE accounts SET abalance = abalance + 1 WHERE aid % 2 = 0');
      await caughtUp('SELECT sum(abalance)::text AS v FROM accounts');
      const burstSeconds = (Date.now() - t0) / 1000;
      const burstMb = w.peakRssMb();
      const tenth = Math.max(1, Math.round(rows / 10));
      await source.query(`BEGIN; INSERT INTO accounts SELECT g, 1, 0, '' FROM generate_series(${rows + 1}, ${rows + tenth}) g; DELETE FROM accounts WHERE aid <= ${tenth}; COMMIT`);
      await caughtUp('SELECT count(*)::text AS v FROM accounts');
      const r: WorkerStreamRss = { flags, rows, startupMb: w.startupPeakRssMb, afterLoadMb, burstMb, burstSeconds, mixedMb: w.peakRssMb() };
      say(`a worker process (node ${flags.join(' ') || "with Node's defaults"}) streaming ${rows.toLocaleString('en')} rows: peak RSS ${r.startupMb} MB at start, ${r.afterLoadMb} MB after the initial load, ${r.burstMb} MB after ${Math.floor(rows / 2).toLocaleString('en')} updates in one transaction (applied in ${burstSeconds.toFixed(2)} s), ${r.mixedMb} MB after the mixed burst`);
      await stopCdc(env.client, { config, pipeline: 'acc', dropSlot: true });
      return r;
    } finally {
      await w.stop();
    }
  } finally {
    await env.teardown();
    await server.close();
  }
}

if (require.main === module)
  workerStreamRss(Number(process.argv[2] ?? 1_000_000)).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
