// `node --import tsx bench/engine-bench.ts [rows]`: the sync engine alone (no Temporal, no CLI) on
// pgbench_accounts, database to database on the local PostgreSQL: the raw binary COPY pipe, an
// upsert first load, and re-syncs of the populated target with 0/1/10% of rows changed (spread
// and clustered), by the plain merge and by compare-then-copy — wall seconds, ratio to the pipe
// and this process's CPU seconds per million rows. Figures are printed, never asserted.
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';
import pg from 'pg';
import { freshDatabase } from '../src/provision/postgres';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { createSyncEngine, type CallContext, type SyncEngine } from '../src/sync';
import { createPoolRegistry } from '../src/db/pools';
import { createCredentialProvider } from '../src/auth/credentials';
import { createLogger } from '../src/logger';
import { ADMIN_URL } from '../test/helpers/db';

const sh = promisify(execFile);
const rows = Number(process.argv[2] ?? process.env.BENCH_ROWS ?? 500_000);
const only = process.env.BENCH_ONLY?.split(',');

async function main() {
  const id = `${process.pid}`;
  const srcUrl = await freshDatabase(ADMIN_URL, `lbw_eb_src_${id}`);
  const dstUrl = await freshDatabase(ADMIN_URL, `lbw_eb_dst_${id}`);
  const src = new pg.Client({ connectionString: srcUrl });
  const dst = new pg.Client({ connectionString: dstUrl });
  await src.connect();
  await dst.connect();
  const env = (url: string) => {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port || 5432), database: u.pathname.slice(1), user: decodeURIComponent(u.username) || 'postgres', ssl: { mode: 'disable' } };
  };
  const log: { msg: string; fields: Record<string, unknown> }[] = [];
  const auth = { method: 'pat', token: 'trust-auth-ignores-this' };
  const config: Config = parseConfig({
    temporal: { taskQueue: 'bench' },
    profiles: { s: { auth, environments: { b: env(srcUrl) } }, t: { auth, environments: { b: env(dstUrl) } } },
    pipelines: {
      up: { source: { profile: 's', environment: 'b', table: 'pgbench_accounts' }, target: { profile: 't', environment: 'b', table: 'accounts' }, mode: 'upsert', key: ['aid'], deletes: 'hard' },
      // Full refresh at parallelism 1 and 4, timed by phase: where a copy's seconds go.
      ...Object.fromEntries(
        [1, 2, 4].map((n) => [`full${n}`, { source: { profile: 's', environment: 'b', table: 'pgbench_accounts' }, target: { profile: 't', environment: 'b', table: `full${n}` }, mode: 'full-refresh', key: ['aid'], parallelism: n }]),
      ),
    },
  });
  const logger = createLogger({ level: 'silent' });
  const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
  const engine: SyncEngine = createSyncEngine({ config, log: (msg, fields) => log.push({ msg, fields }) });
  const ctx: CallContext = { connect: (p, e) => pools.connect(p, e) };

  await src.query(`CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);
  await src.query(`INSERT INTO pgbench_accounts SELECT g, 1 + (g - 1) / 100000, 0, '' FROM generate_series(1, ${rows}) g`);
  await src.query('VACUUM ANALYZE pgbench_accounts');
  await dst.query(`CREATE TABLE pipe (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);
  await dst.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);

  const timed = async (label: string, fn: () => Promise<unknown>, pipe?: number) => {
    if (only && !only.some((o) => label.includes(o))) return 0;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const extra = await fn();
    const s = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(cpu);
    const cpuPerM = ((c.user + c.system) / 1e6) * (1e6 / rows);
    console.log(`${label.padEnd(44)} ${s.toFixed(2).padStart(6)} s  ratio ${pipe ? (pipe / s).toFixed(2) : '   - '}  worker CPU ${cpuPerM.toFixed(2)} s/M rows  ${extra ? JSON.stringify(extra) : ''}`);
    return s;
  };

  let pipe = Infinity;
  for (let i = 0; i < 2; i++) {
    await dst.query('TRUNCATE pipe');
    const s = await timed('raw binary COPY pipe', () =>
      sh('bash', ['-c', `psql -qAt "${srcUrl}" -c "COPY pgbench_accounts TO STDOUT (FORMAT binary)" | psql -qAt "${dstUrl}" -c "COPY pipe FROM STDIN (FORMAT binary)"`]),
    );
    pipe = Math.min(pipe, s);
  }

  let n = 0;
  const run = async (compare: boolean) => {
    const runId = `r${n++}`;
    const t0 = performance.now();
    const plan = await engine.plan(ctx, { pipeline: 'up', runId, partitioned: true, compare });
    const planSeconds = Number(((performance.now() - t0) / 1000).toFixed(2));
    const p = plan.parallelism ?? 1;
    let written = 0;
    let copied = 0;
    if (plan.resync?.method === 'compare') {
      const q = plan.resync.buckets.filter((b) => !b.done);
      await Promise.all(
        Array.from({ length: p }, async () => {
          for (let b = q.shift(); b; b = q.shift()) {
            const r = await engine.resyncBucket(ctx, { pipeline: 'up', runId, bucket: b.bucket, leafRows: plan.resync!.leafRows, digests: plan.resync!.digests, groupRows: plan.resync!.groupRows });
            if (process.env.BENCH_DEBUG) console.log(JSON.stringify(r));
            written += r.rowsWritten;
            copied += r.rowsCopied;
          }
        }),
      );
    } else {
      const q = plan.partitions!.filter((x) => !x.done);
      await Promise.all(
        Array.from({ length: p }, async () => {
          for (let x = q.shift(); x; x = q.shift())
            for (let after = x.cursor, done = false; !done; ) {
              const c = await engine.chunk(ctx, { pipeline: 'up', runId, after, partition: x.partition, initialLoad: plan.initialLoad });
              ({ cursor: after, done } = c);
              written += c.rowsWritten;
              copied += c.rowsCopied;
            }
        }),
      );
      if (plan.deletes && !plan.initialLoad) {
        const d = await engine.planDeletes(ctx, { pipeline: 'up', runId });
        const q2 = d.buckets.filter((b) => !b.done);
        await Promise.all(Array.from({ length: p }, async () => { for (let b = q2.shift(); b; b = q2.shift()) await engine.deleteBucket(ctx, { pipeline: 'up', runId, bucket: b.bucket, leafRows: d.leafRows }); }));
      }
    }
    const t1 = performance.now();
    await engine.finish(ctx, { pipeline: 'up', runId });
    const finishSeconds = Number(((performance.now() - t1) / 1000).toFixed(2));
    return { method: plan.resync?.method ?? (plan.initialLoad ? 'first load' : 'merge'), plan: planSeconds, finish: finishSeconds, written, copied, ...(plan.resync && { probe: plan.resync.probe, digests: plan.resync.digests, groupRows: plan.resync.groupRows }) };
  };

  /** A full refresh by phase: plan (split points), chunks (COPY into the new table, n lanes), finish (index build and swap). */
  const fullRefresh = async (pipeline: string) => {
    const runId = `f${n++}`;
    const t0 = performance.now();
    const plan = await engine.plan(ctx, { pipeline, runId, partitioned: true });
    const t1 = performance.now();
    const q = plan.partitions!.filter((x) => !x.done);
    let chunks = 0;
    await Promise.all(
      Array.from({ length: plan.parallelism ?? 1 }, async () => {
        for (let x = q.shift(); x; x = q.shift())
          for (let after = x.cursor, done = false; !done; chunks++) ({ cursor: after, done } = await engine.chunk(ctx, { pipeline, runId, after, partition: x.partition, initialLoad: plan.initialLoad }));
      }),
    );
    const t2 = performance.now();
    await engine.finish(ctx, { pipeline, runId });
    const t3 = performance.now();
    const sec = (a: number, z: number) => Number(((z - a) / 1000).toFixed(2));
    return { partitions: plan.partitions!.length, chunks, plan: sec(t0, t1), copy: sec(t1, t2), finish: sec(t2, t3) };
  };
  for (const k of [1, 2, 4]) await dst.query(`CREATE TABLE full${k} (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);
  await timed('full refresh, parallelism 1', () => fullRefresh('full1'), pipe);
  await timed('full refresh, parallelism 2', () => fullRefresh('full2'), pipe);
  await timed('full refresh, parallelism 4', () => fullRefresh('full4'), pipe);
  await timed('upsert first load (empty keyed target)', () => run(true), pipe);
  await timed('re-sync 0% changed, plain merge', () => run(false), pipe);
  await timed('re-sync 0% changed, compare', () => run(true), pipe);
  const cases: [string, string][] = [
    ['1% spread', `aid % 100 = 17`],
    ['1% clustered', `aid BETWEEN ${Math.floor(rows / 3)} AND ${Math.floor(rows / 3) + rows / 100 - 1}`],
    ['10% spread', `aid % 10 = 3`],
    ['10% clustered', `aid BETWEEN ${Math.floor(rows / 2)} AND ${Math.floor(rows / 2) + rows / 10 - 1}`],
  ];
  for (const [label, where] of cases) {
    await src.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ${where}`);
    await timed(`re-sync ${label} changed, compare`, () => run(true), pipe);
  }
  await src.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 18`);
  await timed(`re-sync 1% spread changed, plain merge`, () => run(false), pipe);
  console.log(`rows ${rows}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  await pools.end();
  await src.end();
  await dst.end();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  for (const d of [`lbw_eb_src_${id}`, `lbw_eb_dst_${id}`]) await admin.query(`DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`);
  await admin.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
