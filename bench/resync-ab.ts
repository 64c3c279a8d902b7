// `node --import tsx bench/resync-ab.ts [--rows N] [--runs N] [--base DIR] [--out PREFIX]`: compare-
// then-copy re-syncs on the engine alone (no Temporal, no CLI), pgbench_accounts database to
// database on the local PostgreSQL. Each round changes the source anew (1% spread: every 100th key;
// 1% clustered: one range; 10% spread: every 10th) and re-syncs it, timed from plan to finish, with
// the rows copied, written and deleted. With --base (a checkout of another commit, its
// node_modules in place) each round runs that commit's engine and this one's in turn, alternating
// which goes first, on the same tables: a paired A/B that holds while the machine's speed drifts.
// Figures are printed (and written to PREFIX.json / PREFIX.md with --out), never asserted.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { createCredentialProvider } from '../src/auth/credentials';
import { createLogger } from '../src/logger';
import { freshDatabase } from '../src/provision/postgres';
import { createSyncEngine, type CallContext } from '../src/sync';
import { ADMIN_URL } from '../test/helpers/db';

const arg = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const rows = Number(arg('rows', '500000'));
const runs = Number(arg('runs', '3'));
const base = arg('base');
/** What to call the base commit in the table (its checkout may be an export without git history). */
const baseLabel = arg('base-label');
const out = arg('out');
const cases = (arg('cases', '1% spread,1% clustered,10% spread') ?? '').split(',').map((c) => c.replace(/_/g, ' '));
/** Buckets in flight (the pipeline's parallelism; default: the config's default). */
const parallelism = arg('parallelism');

type Engine = ReturnType<typeof createSyncEngine>;
interface Figures { seconds: number; copied: number; written: number; deleted: number; method: string; digests?: boolean; groupRows?: number }

async function main() {
  const id = `${process.pid}`;
  const srcUrl = await freshDatabase(ADMIN_URL, `lbw_ab_src_${id}`);
  const dstUrl = await freshDatabase(ADMIN_URL, `lbw_ab_dst_${id}`);
  const src = new pg.Client({ connectionString: srcUrl });
  await src.connect();
  const env = (url: string) => {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port || 5432), database: u.pathname.slice(1), user: decodeURIComponent(u.username) || 'postgres', ssl: { mode: 'disable' } };
  };
  const auth = { method: 'pat', token: 'trust-auth-ignores-this' };
  const config = parseConfig({
    temporal: { taskQueue: 'bench' },
    profiles: { s: { auth, environments: { b: env(srcUrl) } }, t: { auth, environments: { b: env(dstUrl) } } },
    pipelines: { up: { source: { profile: 's', environment: 'b', table: 'pgbench_accounts' }, target: { profile: 't', environment: 'b', table: 'accounts' }, mode: 'upsert', key: ['aid'], deletes: 'hard', ...(parallelism && { parallelism: Number(parallelism) }) } },
  });
  const logger = createLogger({ level: 'silent' });
  const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
  const ctx: CallContext = { connect: (p, e) => pools.connect(p, e) };
  const engines: [string, Engine][] = [['this', createSyncEngine({ config })]];
  if (base) {
    const mod = (await import(path.resolve(base, 'src/sync/index.ts'))) as { createSyncEngine: typeof createSyncEngine };
    engines.push(['base', mod.createSyncEngine({ config })]);
  }
  const commit = (dir: string) => execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();

  await src.query(`CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);
  await src.query(`INSERT INTO pgbench_accounts SELECT g, 1 + (g - 1) / 100000, 0, '' FROM generate_series(1, ${rows}) g`);
  await src.query('VACUUM ANALYZE pgbench_accounts');
  const dst = new pg.Client({ connectionString: dstUrl });
  await dst.connect();
  await dst.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);
  await dst.end();

  let n = 0;
  const resync = async (engine: Engine): Promise<Figures> => {
    const runId = `ab${n++}`;
    const t0 = performance.now();
    const plan = await engine.plan(ctx, { pipeline: 'up', runId, partitioned: true, compare: true });
    const f: Figures = { seconds: 0, copied: 0, written: 0, deleted: 0, method: plan.resync?.method ?? (plan.initialLoad ? 'first load' : 'merge') };
    if (plan.resync?.method === 'compare') {
      const { leafRows, digests, groupRows } = plan.resync;
      Object.assign(f, { digests, groupRows });
      const q = plan.resync.buckets.filter((b) => !b.done);
      await Promise.all(
        Array.from({ length: plan.parallelism ?? 1 }, async () => {
          for (let b = q.shift(); b; b = q.shift()) {
            const r = await engine.resyncBucket(ctx, { pipeline: 'up', runId, bucket: b.bucket, leafRows, digests, groupRows });
            f.copied += r.rowsCopied;
            f.written += r.rowsWritten;
            f.deleted += r.rowsDeleted;
          }
        }),
      );
    } else {
      const q = plan.partitions!.filter((x) => !x.done);
      await Promise.all(
        Array.from({ length: plan.parallelism ?? 1 }, async () => {
          for (let x = q.shift(); x; x = q.shift())
            for (let after = x.cursor, done = false; !done; ) {
              const c = await engine.chunk(ctx, { pipeline: 'up', runId, after, partition: x.partition, initialLoad: plan.initialLoad });
              ({ cursor: after, done } = c);
              f.copied += c.rowsCopied;
              f.written += c.rowsWritten;
            }
        }),
      );
    }
    await engine.finish(ctx, { pipeline: 'up', runId });
    f.seconds = (performance.now() - t0) / 1000;
    return f;
  };

  await resync(engines[0]![1]); // first load
  const change: Record<string, (round: number) => string> = {
    '1% spread': (r) => `aid % 100 = ${(17 + r) % 100}`,
    '1% clustered': (r) => {
      const from = 1 + (Math.floor((r * rows) / 7) % (rows - rows / 100));
      return `aid BETWEEN ${from} AND ${from + Math.floor(rows / 100) - 1}`;
    },
    '10% spread': (r) => `aid % 10 = ${(3 + r) % 10}`,
  };
  const results: { case: string; engine: string; round: number; figures: Figures }[] = [];
  for (const label of cases) {
    for (let round = 0; round < runs; round++) {
      const order = round % 2 === 0 ? engines : [...engines].reverse();
      for (const [name, engine] of order) {
        await src.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ${change[label]!(round * engines.length + (name === 'base' ? 1 : 0))}`);
        await src.query('CHECKPOINT').catch(() => undefined);
        const figures = await resync(engine);
        results.push({ case: label, engine: name, round, figures });
        console.log(`${label.padEnd(14)} ${name.padEnd(5)} round ${round}: ${figures.seconds.toFixed(2)} s, copied ${figures.copied}, written ${figures.written} (${figures.method}${figures.digests === undefined ? '' : figures.digests ? ', digests' : ', row hashes'})`);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const lines = [`| case | engine | median s | min–max s | rows copied (median) | rows written (median) |`, `|---|---|---|---|---|---|`];
  for (const label of cases)
    for (const [name] of engines) {
      const rs = results.filter((r) => r.case === label && r.engine === name).map((r) => r.figures);
      const s = rs.map((r) => r.seconds);
      lines.push(`| ${label} | ${name === 'base' ? `before (${baseLabel ?? commit(base!)})` : `after (${commit('.')})`} | ${median(s).toFixed(2)} | ${Math.min(...s).toFixed(2)}–${Math.max(...s).toFixed(2)} | ${median(rs.map((r) => r.copied)).toLocaleString('en')} | ${median(rs.map((r) => r.written)).toLocaleString('en')} |`);
    }
  if (base)
    for (const label of cases) {
      const ratios = Array.from({ length: runs }, (_, round) => {
        const get = (e: string) => results.find((r) => r.case === label && r.engine === e && r.round === round)!.figures.seconds;
        return get('base') / get('this');
      });
      lines.push(`| ${label} | before/after, paired | ${median(ratios).toFixed(2)}× | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}× | | |`);
    }
  const note = `${rows.toLocaleString('en')} rows, ${runs} rounds, ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  console.log(`\n${lines.join('\n')}\n\n${note}`);
  if (out) {
    await writeFile(`${out}.json`, JSON.stringify({ date: new Date().toISOString(), rows, runs, note, results }, null, 2));
    await writeFile(`${out}.md`, `${lines.join('\n')}\n\n${note}\n`);
  }
  await pools.end();
  await src.end();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  for (const d of [`lbw_ab_src_${id}`, `lbw_ab_dst_${id}`]) await admin.query(`DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`);
  await admin.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
