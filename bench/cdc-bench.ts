// `npm run bench -- --only cdc [--rows N] [--tps N] [--seconds N] [--burst N] [--no-native] [--no-worker]`: the cdc
// engine on an embedded PostgreSQL started with wal_level=logical (the machine's shared server runs
// replica), side by side with PostgreSQL's own logical replication (CREATE SUBSCRIPTION) on the same
// server and source table, native first: the initial load (against the raw binary COPY pipe), the lag
// under a fixed-rate mixed load (each transaction an update, an insert and a delete), the catch-up
// after a burst of updates and after a burst of inserts and deletes committed at once, and the
// process's peak RSS. Engine in-process (no Temporal): the stream's own figures. Then a real worker
// process streams a burst (cdc-worker.ts, --no-worker skips it): the worker's own peak RSS.
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
import { ACCOUNTS_DDL } from './accounts';
import { workerStreamRss } from './cdc-worker';
import { workerNodeFlags } from './worker-process';
import { subscribeNatively } from './native-replication';
import { rawPipe } from './peers';

const say = (m: string) => console.log(`• ${m}`);
/** The worker's node flags this process runs with (sync-bench.ts starts it with them). */
const nodeFlags = workerNodeFlags().filter((f) => process.execArgv.includes(f)).join(' ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);


/** Shared by the native run and ours, so neither inserts an id the other did. */
interface LoadState {
  nextId: number;
  tx: number;
}

interface Steady {
  tpsOffered: number;
  tpsAchieved: number;
  seconds: number;
  lagP50: number;
  lagP95: number;
  lagMax: number;
  rowsPerSecond?: number;
  transactions: number;
}

interface Burst {
  rows: number;
  commitSeconds: number;
  catchUpSeconds: number;
  rowsPerSecond: number;
  /** This process's CPU seconds (user + system) from the commit to applied: for ours, the reader's decode and apply work. */
  cpuSeconds: number;
}

interface NativeResult {
  initialLoad: { seconds: number; ratioToPipe: number };
  steady: Steady;
  update: Burst;
  mixed: Burst;
  equalAfterCatchUp: boolean;
}

/**
 * One writer at a fixed rate; every transaction updates a row, inserts one (its id tells when it
 * reached the target) and deletes one. Lag = first seen in the target − commit.
 */
async function steadyState(writer: pg.Client, target: pg.Client, load: LoadState, o: { rows: number; tps: number; seconds: number }): Promise<Steady> {
  const committed = new Map<number, number>();
  const lags: number[] = [];
  let watching = true;
  let seen = load.nextId - 1;
  const watcher = (async () => {
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
  let sent = 0;
  while (performance.now() - start < o.seconds * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * o.tps);
    for (; sent < due; sent++) {
      const id = load.nextId++;
      const n = load.tx++;
      await writer.query(
        `BEGIN; UPDATE accounts SET abalance = abalance + 1 WHERE aid = ${1 + ((n * 104729) % o.rows)}; INSERT INTO accounts VALUES (${id}, 0, 0, ''); DELETE FROM accounts WHERE aid = ${1 + ((n * 7919) % o.rows)}; COMMIT`,
      );
      committed.set(id, performance.now());
    }
    await sleep(1);
  }
  const seconds = (performance.now() - start) / 1000;
  watching = false;
  await watcher;
  return { tpsOffered: o.tps, tpsAchieved: sent / seconds, seconds, lagP50: pct(lags, 50), lagP95: pct(lags, 95), lagMax: Math.max(...lags), transactions: sent };
}

const updateBurst = (rows: number): string[] => [`UPDATE accounts SET abalance = abalance + 1 WHERE aid <= ${rows}`];

/**
 * `n` new rows and `n` deleted ones, the deleted from the top of the seeded ids (the update burst
 * takes the bottom): run 0 (native) deletes the top `n`, run 1 (ours) the `n` below them.
 */
function mixedBurst(load: LoadState, n: number, seeded: number, run: 0 | 1): string[] {
  const first = load.nextId;
  load.nextId += n;
  const top = seeded - run * n;
  return [`INSERT INTO accounts SELECT g, 0, 0, '' FROM generate_series(${first}, ${first + n - 1}) g`, `DELETE FROM accounts WHERE aid > ${top - n} AND aid <= ${top}`];
}

/**
 * Runs `statements` as one transaction and waits until `applied` (the reader's last applied source
 * commit) passes the WAL position taken just before it: it is the only transaction after that point.
 */
async function burstApplied(writer: pg.Client, statements: string[], applied: () => Promise<string | null>): Promise<Burst> {
  const { rows: lsn } = await writer.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  const before = lsn[0]!.lsn;
  const b0 = performance.now();
  await writer.query('BEGIN');
  let changed = 0;
  for (const sql of statements) changed += (await writer.query(sql)).rowCount ?? 0;
  await writer.query('COMMIT');
  const committedAt = performance.now();
  const cpu0 = process.cpuUsage();
  for (;;) {
    const a = await applied();
    if (a && compareLsn(a, before) > 0) break;
    if (performance.now() - committedAt > 600_000) throw new Error('the burst was not applied within 10 minutes');
    await sleep(20);
  }
  const catchUpSeconds = (performance.now() - committedAt) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rows: changed, commitSeconds: (committedAt - b0) / 1000, catchUpSeconds, rowsPerSecond: changed / catchUpSeconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const describeSteady = (s: Steady, tps: number) =>
  `steady state: ${s.tpsAchieved.toFixed(0)} of ${tps} transactions/s for ${s.seconds.toFixed(0)} s; lag p50 ${s.lagP50.toFixed(2)} s, p95 ${s.lagP95.toFixed(2)} s, max ${s.lagMax.toFixed(2)} s` +
  (s.rowsPerSecond !== undefined ? `; ${s.rowsPerSecond.toFixed(0)} rows/s applied` : '');
const describeBurst = (what: string, b: Burst) => `${what} of ${b.rows.toLocaleString('en')} rows in one transaction: applied ${b.catchUpSeconds.toFixed(2)} s after its commit — ${b.rowsPerSecond.toFixed(0)} rows/s, ${b.cpuSeconds.toFixed(2)} CPU-s in this process`;

async function sameRows(a: pg.Client, b: pg.Client): Promise<boolean> {
  const [x, y] = await Promise.all([a, b].map((c) => c.query<{ n: string; s: string }>(`SELECT count(*)::text AS n, sum(abalance)::text AS s FROM accounts`).then((r) => r.rows[0]!)));
  return x!.n === y!.n && x!.s === y!.s;
}

export async function cdcBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { rows: { type: 'string' }, tps: { type: 'string' }, seconds: { type: 'string' }, burst: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' }, 'no-native': { type: 'boolean' }, 'no-worker': { type: 'boolean' } },
    strict: false,
  });
  const num = (v: unknown, env: string, d: number) => Number((typeof v === 'string' && v) || process.env[env] || d);
  const rows = num(values.rows, 'BENCH_ROWS', 2_000_000);
  const tps = num(values.tps, 'BENCH_CDC_TPS', 1000);
  const seconds = num(values.seconds, 'BENCH_CDC_SECONDS', 60);
  const burst = Math.min(rows, num(values.burst, 'BENCH_CDC_BURST', 500_000));
  // The mixed burst: this many inserts and as many deletes, in one transaction (100,000 each by default).
  const mixedRows = Math.max(1, Math.round(burst / 5));
  const skipNative = values['no-native'] === true || process.env.BENCH_CDC_NATIVE === '0';
  // A real worker process streaming a table of twice the burst, then the burst (cdc-worker.ts): the worker's own RSS.
  const skipWorker = values['no-worker'] === true || process.env.BENCH_CDC_WORKER === '0';
  const out = typeof values.out === 'string' ? values.out : path.join(__dirname, 'results', 'cdc');
  let peakRss = 0;
  // Peak RSS per phase too (which part of the run sets the peak), and the most JS heap in use
  // (live objects and garbage not yet collected: V8 keeps the pages a burst's garbage grew).
  let phase = 'setup';
  const phasePeaks: Record<string, number> = {};
  let heapAtPeakMb = 0;
  const rss = setInterval(() => {
    const m = process.memoryUsage();
    const now = m.rss;
    heapAtPeakMb = Math.max(heapAtPeakMb, Math.round(m.heapUsed / 1024 / 1024));
    peakRss = Math.max(peakRss, now);
    phasePeaks[phase] = Math.max(phasePeaks[phase] ?? 0, Math.round(now / 1024 / 1024));
  }, 100);

  const base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdc-bench-'));
  const cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical', shared_buffers: '256MB', max_wal_size: '4GB' } });
  await cluster.init();
  await cluster.start();
  const url = (db: string) => cluster.url.replace(/\/postgres$/, `/${db}`);
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  for (const db of ['src', 'dst', 'pipe', 'nat']) await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  const source = new pg.Client({ connectionString: url('src') });
  const target = new pg.Client({ connectionString: url('dst') });
  await source.connect();
  await target.connect();
  const pools: { end(): Promise<void> }[] = [];
  try {
    say(`load: ${rows.toLocaleString('en')} pgbench-style rows on PostgreSQL with wal_level=logical (load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
    await source.query(ACCOUNTS_DDL);
    await source.query(`INSERT INTO accounts SELECT g, 1 + g / 100000, 0, '' FROM generate_series(1, $1::int) g`, [rows]);
    await source.query('VACUUM ANALYZE accounts');
    const pipeDb = new pg.Client({ connectionString: url('pipe') });
    await pipeDb.connect();
    await pipeDb.query(ACCOUNTS_DDL);
    await pipeDb.end();
    const pipe = await rawPipe(url('src'), url('pipe'), 'accounts', 'accounts');
    say(`raw binary COPY pipe into a keyed table: ${pipe.seconds.toFixed(2)} s`);
    phase = 'pipe and setup';

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

    // Native logical replication first, on the same source and server, then dropped: its figures
    // beside ours below. A failure of the native run is reported and ours still runs.
    const writer = new pg.Client({ connectionString: url('src') });
    await writer.connect();
    const load: LoadState = { nextId: rows + 1, tx: 0 };
    let native: NativeResult | { failed: string } | undefined;
    if (!skipNative) {
      const nat = new pg.Client({ connectionString: url('nat') });
      await nat.connect();
      try {
        await nat.query(ACCOUNTS_DDL);
        phase = 'native';
        say('native: CREATE SUBSCRIPTION (slot made apart), initial copy…');
        const sub = await subscribeNatively(url('src'), url('nat'), 'accounts');
        say(`native initial load: ${sub.loadSeconds.toFixed(2)} s — ${(pipe.seconds / sub.loadSeconds).toFixed(2)} of the pipe's speed`);
        const steady = await steadyState(writer, nat, load, { rows, tps, seconds });
        say(`native ${describeSteady(steady, tps)}`);
        const update = await burstApplied(writer, updateBurst(burst), () => sub.appliedLsn());
        say(`native ${describeBurst('update burst', update)}`);
        const mixed = await burstApplied(writer, mixedBurst(load, mixedRows, rows, 0), () => sub.appliedLsn());
        say(`native ${describeBurst('mixed burst', mixed)}`);
        const equal = await sameRows(source, nat);
        await sub.drop();
        native = { initialLoad: { seconds: sub.loadSeconds, ratioToPipe: pipe.seconds / sub.loadSeconds }, steady, update, mixed, equalAfterCatchUp: equal };
      } catch (err) {
        native = { failed: (err as Error).message };
        say(`native replication failed: ${native.failed}`);
      } finally {
        await nat.end().catch(() => undefined);
      }
    }

    // Ours. Initial load: slot first, then the partitioned copy (4 lanes, as the workflow runs it).
    phase = 'initial load';
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
    const ourApplied = async () => last?.appliedLsn ?? null;

    phase = 'steady state';
    const rowsBefore = last?.rowsApplied ?? 0;
    const steady = await steadyState(writer, target, load, { rows, tps, seconds });
    const steadyRows = (last?.rowsApplied ?? 0) - rowsBefore;
    steady.rowsPerSecond = steadyRows / steady.seconds;
    say(describeSteady(steady, tps));
    phase = 'update burst';
    const update = await burstApplied(writer, updateBurst(burst), ourApplied);
    say(`${describeBurst('update burst', update)}; last batch ${JSON.stringify(last?.lastBatch)}`);
    phase = 'mixed burst';
    const mixed = await burstApplied(writer, mixedBurst(load, mixedRows, rows, 1), ourApplied);
    say(describeBurst('mixed burst', mixed));
    stop.abort();
    await streaming;
    await writer.end();

    const equal = await sameRows(source, target);
    clearInterval(rss);
    const worker = skipWorker ? undefined : await workerStreamRss(burst * 2, say).catch((err: unknown) => ({ failed: String(err) }));
    const result = {
      at: new Date().toISOString(),
      loadAverage: os.loadavg(),
      cpus: os.cpus().length,
      rows,
      pipeSeconds: pipe.seconds,
      initialLoad: { seconds: loadSeconds, ratioToPipe: pipe.seconds / loadSeconds },
      steady,
      burst: { ...update, applyMs: last?.lastBatch?.applyMs },
      mixed,
      peakRssMb: peakRss / 1024 / 1024,
      peakRssMbByPhase: phasePeaks,
      peakHeapUsedMb: heapAtPeakMb,
      equalAfterCatchUp: equal,
      native,
      worker,
    };
    say(`peak RSS of the bench process (engine, stream and load generator; node ${nodeFlags || "with Node's defaults"}): ${result.peakRssMb.toFixed(0)} MB (by phase, MB: ${JSON.stringify(phasePeaks)}; most JS heap in use ${heapAtPeakMb} MB); source and target equal after catch-up: ${equal}`);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(`${out}.json`, JSON.stringify(result, null, 2));
    const nat = native && !('failed' in native) ? native : undefined;
    // Speed of ours over native's: > 1 is faster than native.
    const vs = (oursSeconds: number, nativeSeconds: number | undefined) => (nativeSeconds === undefined ? '—' : `${(nativeSeconds / oursSeconds).toFixed(2)}×`);
    const nativeCell = (f: (n: NativeResult) => string) => (nat ? f(nat) : native ? `failed: ${(native as { failed: string }).failed}` : 'not run');
    await writeFile(
      `${out}.md`,
      [
        `# cdc benchmark (${result.at})`,
        '',
        `${os.cpus().length} cores, load average ${result.loadAverage.map((x) => x.toFixed(1)).join(' ')} at the end (a shared machine: figures are noisy); embedded PostgreSQL 17, wal_level=logical, source and target databases on one server. ` +
          'Native is `CREATE SUBSCRIPTION` on the same server and source table (its slot made apart, defaults otherwise), run first and dropped before ours starts; "ours ÷ native" is native\'s seconds over ours (> 1: ours is faster).',
        '',
        '| case | native logical replication | ours | ours ÷ native | target |',
        '|---|---|---|---|---|',
        `| initial load of ${rows.toLocaleString('en')} rows | ${nativeCell((n) => `${n.initialLoad.seconds.toFixed(2)} s (${n.initialLoad.ratioToPipe.toFixed(2)} of the pipe)`)} | ${loadSeconds.toFixed(2)} s (${result.initialLoad.ratioToPipe.toFixed(2)} of the raw COPY pipe, ${pipe.seconds.toFixed(2)} s) | ${vs(loadSeconds, nat?.initialLoad.seconds)} | ≥ 1.0× native |`,
        `| steady state, ${tps} tx/s offered for ${steady.seconds.toFixed(0)} s (each: an update, an insert, a delete) | ${nativeCell((n) => `${n.steady.tpsAchieved.toFixed(0)} tx/s; lag p50 ${n.steady.lagP50.toFixed(2)} s, p95 ${n.steady.lagP95.toFixed(2)} s, max ${n.steady.lagMax.toFixed(2)} s`)} | ${steady.tpsAchieved.toFixed(0)} tx/s; lag p50 ${steady.lagP50.toFixed(2)} s, p95 ${steady.lagP95.toFixed(2)} s, max ${steady.lagMax.toFixed(2)} s | | p95 ≤ 1 s |`,
        `| burst: ${burst.toLocaleString('en')} updates in one transaction, commit to applied | ${nativeCell((n) => `${n.update.catchUpSeconds.toFixed(2)} s (${n.update.rowsPerSecond.toFixed(0)} rows/s)`)} | ${update.catchUpSeconds.toFixed(2)} s (${update.rowsPerSecond.toFixed(0)} rows/s) | ${vs(update.catchUpSeconds, nat?.update.catchUpSeconds)} | ≥ 1.5× native |`,
        `| mixed burst: ${mixedRows.toLocaleString('en')} inserts + ${mixedRows.toLocaleString('en')} deletes in one transaction, commit to applied | ${nativeCell((n) => `${n.mixed.catchUpSeconds.toFixed(2)} s (${n.mixed.rowsPerSecond.toFixed(0)} rows/s)`)} | ${mixed.catchUpSeconds.toFixed(2)} s (${mixed.rowsPerSecond.toFixed(0)} rows/s) | ${vs(mixed.catchUpSeconds, nat?.mixed.catchUpSeconds)} | ≥ 1.5× native |`,
        `| peak RSS (bench process: engine, stream, load generator; node ${nodeFlags || "with Node's defaults"}) | (a server process) | ${result.peakRssMb.toFixed(0)} MB (peak in the ${Object.entries(phasePeaks).sort((x, y) => y[1] - x[1])[0]?.[0] ?? '—'}; most JS heap in use ${heapAtPeakMb} MB) | | ≤ 250 MB |`,
        `| peak RSS of a worker process streaming ${(burst * 2).toLocaleString('en')} rows, after ${burst.toLocaleString('en')} updates in one transaction (bench/cdc-worker.ts) | (a server process) | ${!worker ? 'not run' : 'failed' in worker ? `failed: ${worker.failed}` : `${worker.burstMb} MB (${worker.startupMb} MB at start, ${worker.afterLoadMb} MB after the initial load; node ${worker.flags.join(' ') || "with Node's defaults"})`} | | ≤ 250 MB |`,
        `| source = target after catch-up (count, sum) | ${nativeCell((n) => String(n.equalAfterCatchUp))} | ${equal} | | |`,
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
