// `npm run bench -- --only cdc [--rows N] [--tps N] [--seconds N] [--burst N]`: the cdc engine on an
// embedded PostgreSQL started with wal_level=logical (the machine's shared server runs replica):
// the initial load against the raw binary COPY pipe, the lag under a fixed-rate mixed load (each
// transaction an update, an insert and a delete), the catch-up after a burst of updates committed
// at once, and the process's peak RSS. Engine in-process (no Temporal): the stream's own figures.
// Writes bench/results/cdc.json and cdc.md. Figures are reported, never asserted.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import type { CallContext } from '../src/sync';
import { compareLsn, createCdcEngine, type StreamProgress } from '../src/sync/cdc';
import { rawPipe } from './peers';

const say = (m: string) => console.log(`• ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

export async function cdcBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { rows: { type: 'string' }, tps: { type: 'string' }, seconds: { type: 'string' }, burst: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' } },
    strict: false,
  });
  const num = (v: unknown, env: string, d: number) => Number((typeof v === 'string' && v) || process.env[env] || d);
  const rows = num(values.rows, 'BENCH_ROWS', 2_000_000);
  const tps = num(values.tps, 'BENCH_CDC_TPS', 1000);
  const seconds = num(values.seconds, 'BENCH_CDC_SECONDS', 60);
  const burst = Math.min(rows, num(values.burst, 'BENCH_CDC_BURST', 500_000));
  const out = typeof values.out === 'string' ? values.out : path.join(__dirname, 'results', 'cdc');
  let peakRss = 0;
  const rss = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);

  const base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdc-bench-'));
  const cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical', shared_buffers: '256MB', max_wal_size: '4GB' } });
  await cluster.init();
  await cluster.start();
  const url = (db: string) => cluster.url.replace(/\/postgres$/, `/${db}`);
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  for (const db of ['src', 'dst', 'pipe']) await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  const source = new pg.Client({ connectionString: url('src') });
  const target = new pg.Client({ connectionString: url('dst') });
  await source.connect();
  await target.connect();
  const pools: { end(): Promise<void> }[] = [];
  try {
    say(`load: ${rows.toLocaleString('en')} pgbench-style rows on PostgreSQL with wal_level=logical (load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
    await source.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))`);
    await source.query(`INSERT INTO accounts SELECT g, 1 + g / 100000, 0, '' FROM generate_series(1, $1::int) g`, [rows]);
    await source.query('VACUUM ANALYZE accounts');
    const pipeDb = new pg.Client({ connectionString: url('pipe') });
    await pipeDb.connect();
    await pipeDb.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))`);
    await pipeDb.end();
    const pipe = await rawPipe(url('src'), url('pipe'), 'accounts', 'accounts');
    say(`raw binary COPY pipe into a keyed table: ${pipe.seconds.toFixed(2)} s`);

    const environment = (database: string) => ({ host: '127.0.0.1', port: cluster.options.port, database, user: 'postgres', ssl: { mode: 'disable' }, maxConnections: 12 });
    const config = parseConfig({
      temporal: { taskQueue: 'bench' },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { src: environment('src'), dst: environment('dst') } } },
      pipelines: {
        bench: {
          source: { profile: 'local', environment: 'src', table: 'accounts' },
          target: { profile: 'local', environment: 'dst', table: 'accounts' },
          mode: 'cdc', key: ['aid'], parallelism: 4, cdc: { batchRows: 20000, batchMs: 500 },
        },
      },
    });
    const logger = createLogger({ level: 'silent' });
    const registry = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
    pools.push(registry);
    const cdc = createCdcEngine({
      config,
      replicationConfig: async (profile, env) => {
        (await registry.connect(profile, env)).release();
        const { host, port, database, user, password, ssl } = registry.get(profile, env).options;
        return { host, port, database, user, password, ssl };
      },
    });
    const ctx: CallContext = { connect: (p, e) => registry.connect(p, e) };

    // Initial load: slot first, then the partitioned copy (4 lanes, as the workflow runs it).
    const t0 = performance.now();
    await cdc.join(ctx, { pipeline: 'bench' });
    const plan = await cdc.load.plan(ctx, { pipeline: 'bench', runId: 'bench-load', partitioned: true });
    const queue = plan.partitions!.filter((p) => !p.done);
    await Promise.all(
      Array.from({ length: plan.parallelism ?? 4 }, async () => {
        for (let part = queue.shift(); part; part = queue.shift())
          for (let after = part.cursor; ; ) {
            const c = await cdc.load.chunk(ctx, { pipeline: 'bench', runId: 'bench-load', after, partition: part.partition, initialLoad: plan.initialLoad });
            after = c.cursor;
            if (c.done) break;
          }
      }),
    );
    await cdc.load.finish(ctx, { pipeline: 'bench', runId: 'bench-load' });
    await cdc.finishSnapshot(ctx, { pipeline: 'bench' });
    const loadSeconds = (performance.now() - t0) / 1000;
    say(`initial load (slot, partitioned copy, indexes): ${loadSeconds.toFixed(2)} s — ${(pipe.seconds / loadSeconds).toFixed(2)} of the pipe's speed`);

    // The stream runs from here to the end.
    const stop = new AbortController();
    let last: StreamProgress | undefined;
    const streaming = cdc.stream({ ...ctx, signal: stop.signal }, { pipeline: 'bench', onProgress: (p) => (last = p) });
    streaming.catch(() => undefined);

    // Steady state: one writer at a fixed rate; every transaction updates a row, inserts one (its id
    // tells when it reached the target) and deletes one. Lag = first seen in the target - commit.
    const writer = new pg.Client({ connectionString: url('src') });
    await writer.connect();
    const committed = new Map<number, number>();
    let nextId = rows + 1;
    const lags: number[] = [];
    let watching = true;
    const watcher = (async () => {
      let seen = rows;
      while (watching || committed.size) {
        const { rows: r } = await target.query<{ m: number | null }>(`SELECT max(aid) AS m FROM accounts WHERE aid > $1`, [seen]);
        const now = performance.now();
        const m = r[0]!.m;
        if (m !== null) {
          for (let id = seen + 1; id <= m; id++) {
            const at = committed.get(id);
            if (at !== undefined) lags.push((now - at) / 1000);
            committed.delete(id);
          }
          seen = m;
        }
        if (!watching && committed.size && performance.now() - Math.min(...committed.values()) > 120_000) break;
        await sleep(50);
      }
    })();
    const start = performance.now();
    const rowsBefore = last?.rowsApplied ?? 0;
    let sent = 0;
    while (performance.now() - start < seconds * 1000) {
      const due = Math.floor(((performance.now() - start) / 1000) * tps);
      for (; sent < due; sent++) {
        const id = nextId++;
        const victim = 1 + ((sent * 7919) % rows);
        await writer.query(
          `BEGIN; UPDATE accounts SET abalance = abalance + 1 WHERE aid = ${1 + ((sent * 104729) % rows)}; INSERT INTO accounts VALUES (${id}, 0, 0, ''); DELETE FROM accounts WHERE aid = ${victim}; COMMIT`,
        );
        committed.set(id, performance.now());
      }
      await sleep(1);
    }
    const writeSeconds = (performance.now() - start) / 1000;
    watching = false;
    await watcher;
    const steadyRows = (last?.rowsApplied ?? 0) - rowsBefore;
    const steady = { tpsOffered: tps, tpsAchieved: sent / writeSeconds, seconds: writeSeconds, lagP50: pct(lags, 50), lagP95: pct(lags, 95), lagMax: Math.max(...lags), rowsPerSecond: steadyRows / writeSeconds, transactions: sent };
    say(`steady state: ${steady.tpsAchieved.toFixed(0)} of ${tps} transactions/s for ${writeSeconds.toFixed(0)} s; lag p50 ${steady.lagP50.toFixed(2)} s, p95 ${steady.lagP95.toFixed(2)} s, max ${steady.lagMax.toFixed(2)} s; ${steady.rowsPerSecond.toFixed(0)} rows/s applied`);

    // Burst: `burst` updates committed at once; time until the stream has applied past that commit.
    // The burst is the only transaction after this point: applied once the applied commit LSN passes it.
    const { rows: lsn } = await writer.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const b0 = performance.now();
    await writer.query(`UPDATE accounts SET abalance = abalance + 1 WHERE aid <= $1`, [burst]);
    const committedAt = performance.now();
    while (!last?.appliedLsn || compareLsn(last.appliedLsn, lsn[0]!.lsn) <= 0) {
      if (performance.now() - committedAt > 600_000) throw new Error('the burst was not applied within 10 minutes');
      await sleep(50);
    }
    const catchUp = (performance.now() - committedAt) / 1000;
    say(`burst: last batch ${JSON.stringify(last.lastBatch)} (the rest of the catch-up is decoding and transfer)`);
    const burstResult = { rows: burst, commitSeconds: (committedAt - b0) / 1000, catchUpSeconds: catchUp, rowsPerSecond: burst / catchUp, applyMs: last.lastBatch?.applyMs };
    say(`burst of ${burst.toLocaleString('en')} updates in one transaction: applied ${catchUp.toFixed(2)} s after its commit — ${burstResult.rowsPerSecond.toFixed(0)} rows/s`);
    stop.abort();
    await streaming;
    await writer.end();

    const [a, b] = await Promise.all(
      [source, target].map((c) => c.query<{ n: string; s: string }>(`SELECT count(*)::text AS n, sum(abalance)::text AS s FROM accounts`).then((r) => r.rows[0]!)),
    );
    const equal = a!.n === b!.n && a!.s === b!.s;
    clearInterval(rss);
    const result = {
      at: new Date().toISOString(),
      loadAverage: os.loadavg(),
      cpus: os.cpus().length,
      rows,
      pipeSeconds: pipe.seconds,
      initialLoad: { seconds: loadSeconds, ratioToPipe: pipe.seconds / loadSeconds },
      steady,
      burst: burstResult,
      peakRssMb: peakRss / 1024 / 1024,
      equalAfterCatchUp: equal,
    };
    say(`peak RSS of the bench process (engine, stream and load generator): ${result.peakRssMb.toFixed(0)} MB; source and target equal after catch-up: ${equal}`);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(`${out}.json`, JSON.stringify(result, null, 2));
    await writeFile(
      `${out}.md`,
      [
        `# cdc benchmark (${result.at})`,
        '',
        `${os.cpus().length} cores, load average ${result.loadAverage.map((x) => x.toFixed(1)).join(' ')} at the end (a shared machine: figures are noisy); embedded PostgreSQL 17, wal_level=logical, source and target databases on one server.`,
        '',
        '| case | figure | target |',
        '|---|---|---|',
        `| initial load of ${rows.toLocaleString('en')} rows | ${loadSeconds.toFixed(2)} s; ${result.initialLoad.ratioToPipe.toFixed(2)} of the raw COPY pipe (${pipe.seconds.toFixed(2)} s) | ≥ 0.9 |`,
        `| steady state, ${tps} tx/s offered (${steady.tpsAchieved.toFixed(0)} achieved) for ${steady.seconds.toFixed(0)} s | lag p50 ${steady.lagP50.toFixed(2)} s, p95 ${steady.lagP95.toFixed(2)} s, max ${steady.lagMax.toFixed(2)} s; ${steady.rowsPerSecond.toFixed(0)} rows/s applied | p95 ≤ 5 s |`,
        `| burst of ${burst.toLocaleString('en')} updates in one transaction | applied ${catchUp.toFixed(2)} s after the commit: ${burstResult.rowsPerSecond.toFixed(0)} rows/s | ≥ 50,000 rows/s |`,
        `| peak RSS (bench process: engine, stream, load generator) | ${result.peakRssMb.toFixed(0)} MB | ≤ 300 MB |`,
        `| source = target after catch-up (count, sum) | ${equal} | |`,
        '',
      ].join('\n'),
    );
    say(`wrote ${out}.json and ${out}.md`);
  } finally {
    clearInterval(rss);
    await Promise.all(pools.map((p) => p.end()));
    await source.end().catch(() => undefined);
    await target.end().catch(() => undefined);
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
  }
}
