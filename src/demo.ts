import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { startSync } from './client';
import { followProgress } from './progress';
import { progressQuery } from './workflows/dataSync';
import { describeVerify } from './workflows/verifyReport';
import { LAKEBASE_SEARCH_ATTRIBUTES } from './workflows/searchAttributes';
import { parseConfig } from './config/load';
import type { Logger } from './logger';
import { freshDatabase, provisionPostgres } from './provision/postgres';
import { devPackage } from './provision/devPackages';
import { temporalExecutable } from './provision/temporal';
import { randomBytes } from 'node:crypto';
import { LakebaseEmulator } from './emulator';
import { createLakebaseWorker, installRuntimeLogger } from './worker';

export interface DemoOptions {
  rows: number;
  /** Exit after the sync instead of keeping the Temporal UI up. */
  exit: boolean;
  /** Use an embedded PostgreSQL even when DATABASE_URL or a local server is there. */
  embeddedPostgres?: boolean;
  logger: Logger;
}

const say = (m: string) => console.log(`• ${m}`);

const SEED_SQL = (rows: number) => `
CREATE SCHEMA shop;
CREATE SCHEMA reporting;
CREATE TABLE shop.orders (
  id          bigint PRIMARY KEY,
  customer    text NOT NULL,
  email       text,
  total       numeric(14,4) NOT NULL,
  status      text,
  placed_at   timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  attrs       jsonb,
  note        text
);
INSERT INTO shop.orders
SELECT g,
       'customer ' || (g % 997) || CASE WHEN g % 13 = 0 THEN ' — Zoë Ångström 東京' ELSE '' END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'user' || g || '@example.com' END,
       round((random() * 100000)::numeric, 4),
       (ARRAY['new','paid','shipped',NULL])[1 + g % 4],
       timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '7 minutes 13.000017 seconds',
       now() - (g % 1000) * interval '1 second',
       CASE WHEN g % 5 = 0 THEN NULL ELSE jsonb_build_object('items', g % 9, 'gift', g % 2 = 0, 'tags', jsonb_build_array('a', g % 3)) END,
       CASE WHEN g % 11 = 0 THEN 'quote '' and "double" and \\ backslash' ELSE NULL END
FROM generate_series(1, ${rows}) AS g;
CREATE TABLE reporting.orders (
  id          bigint PRIMARY KEY,
  customer    text NOT NULL,
  email       text,
  total       numeric(14,4) NOT NULL,
  total_cents bigint NOT NULL,
  status      text,
  placed_at   timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  attrs       jsonb,
  note        text
);`;

export async function runDemo(opts: DemoOptions): Promise<boolean> {
  const started = Date.now();
  installRuntimeLogger(opts.logger);
  // Before anything starts: a production install has no dev server package.
  const { TestWorkflowEnvironment } = devPackage('@temporalio/testing', 'the demo');
  say('Finding the Temporal CLI…');
  const executable = await temporalExecutable(say);
  say('Starting the Temporal dev server with its Web UI…');
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable, ui: true, log: { format: 'pretty', level: 'error' }, searchAttributes: LAKEBASE_SEARCH_ATTRIBUTES } });
  const uiPort = Number(env.address.split(':').pop()) + 1000;
  const pgServer = await provisionPostgres(say, { forceEmbedded: opts.embeddedPostgres });
  let emu: LakebaseEmulator | undefined;
  let ok = false;
  try {
    say(`PostgreSQL: ${pgServer.origin}. Creating database lakebase_demo and seeding ${opts.rows.toLocaleString('en')} orders…`);
    const dbUrl = await freshDatabase(pgServer.url, 'lakebase_demo');
    const u = new URL(dbUrl);
    const seed = new pg.Client({ connectionString: dbUrl });
    await seed.connect();
    await seed.query(SEED_SQL(opts.rows));

    // Logins go through the Lakebase emulator exactly as to Lakebase: an M2M OAuth token is the password.
    const clientSecret = `dose${randomBytes(16).toString('hex')}`;
    emu = await new LakebaseEmulator({ upstream: pgServer.url, servicePrincipals: [{ clientId: 'demo-service-principal', clientSecret }] }).start();
    say(`Lakebase emulator: workspace API ${emu.workspaceUrl}, Postgres front ${emu.postgres.host}:${emu.postgres.port} (M2M OAuth).`);
    const rawConfig = {
      temporal: { address: env.address, namespace: 'default', taskQueue: 'lakebase-demo' },
      profiles: {
        demo: {
          auth: { method: 'm2m', workspaceHost: emu.workspaceUrl, clientId: 'demo-service-principal', clientSecret },
          environments: {
            local: { host: emu.postgres.host, port: emu.postgres.port, database: 'lakebase_demo', user: 'demo-service-principal', ssl: { mode: 'disable' } },
          },
        },
      },
      pipelines: {
        'orders-to-reporting': {
          source: { profile: 'demo', environment: 'local', table: 'shop.orders' },
          target: { profile: 'demo', environment: 'local', table: 'reporting.orders' },
          mode: 'upsert',
          key: ['id'],
          transform: { columns: { total_cents: 'round(total * 100)::bigint' } },
          batchRows: 25_000,
          deletes: 'hard',
          verify: 'checksums',
        },
      },
    };
    const config = parseConfig(rawConfig);
    const configFile = path.join(os.tmpdir(), 'lakebase-demo.yaml');
    await writeFile(configFile, YAML.stringify({ ...rawConfig, profiles: { demo: { ...rawConfig.profiles.demo, auth: { ...rawConfig.profiles.demo.auth, clientSecret: '${DEMO_CLIENT_SECRET}' } } } }));

    const lw = await createLakebaseWorker({ config, logger: opts.logger, connection: env.nativeConnection });
    const syncOnce = async () => {
      const handle = await startSync(env.client, { pipeline: 'orders-to-reporting', taskQueue: 'lakebase-demo', config });
      say(`Workflow ${handle.workflowId}`);
      say(`Temporal UI: http://localhost:${uiPort}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}`);
      const t0 = Date.now();
      const stop = followProgress((signal) => env.client.withAbortSignal(signal, () => handle.query(progressQuery)));
      const progress = await handle.result().finally(stop);
      return { progress, seconds: (Date.now() - t0) / 1000 };
    };
    const [first, second, changed] = await lw.runUntil(async () => {
      say('Worker running on task queue lakebase-demo. Starting the sync…');
      const a = await syncOnce();
      say(`Synced ${a.progress.rowsWritten.toLocaleString('en')} rows in ${a.progress.chunks} chunks, ${a.seconds.toFixed(1)} s (${a.progress.run} workflow run(s)).`);
      say(`Token economy: ${emu!.requests('/oidc/v1/token')} OAuth token request(s) for ${emu!.logins.accepted} database login(s) and ${a.progress.chunks + 4} activity executions.`);
      say(describeVerify(a.progress.verify!.report!, ['id']));
      // What a cron job would miss: rows deleted at the source, and edits.
      const deleted = (await seed.query(`DELETE FROM shop.orders WHERE id % 100 = 42`)).rowCount ?? 0;
      const edited = (await seed.query(`UPDATE shop.orders SET status = 'refunded', updated_at = now() WHERE id % 100 = 7`)).rowCount ?? 0;
      say(`Deleted ${deleted.toLocaleString('en')} and changed ${edited.toLocaleString('en')} source orders. Syncing again…`);
      return [a, await syncOnce(), { deleted, edited }] as const;
    });
    const report = second.progress.verify!.report!;
    // A compare-then-copy re-sync deletes in its own pass (progress.resync), otherwise delete detection does.
    const rowsDeleted = second.progress.deletes?.rowsDeleted ?? second.progress.resync?.rowsDeleted ?? 0;
    const how = second.progress.resync ? ` by compare-then-copy (${second.progress.resync.method})` : '';
    say(`Second sync${how}: ${(second.progress.rowsWritten - rowsDeleted).toLocaleString('en')} rows written (the rest unchanged), ${rowsDeleted.toLocaleString('en')} deleted, ${second.seconds.toFixed(1)} s.`);
    console.log(describeVerify(report, ['id']));
    await seed.end();
    ok = first.progress.verify?.report?.ok === true && report.ok && rowsDeleted === changed.deleted;
    console.log(ok ? 'verified: target matches source' : 'MISMATCH: target differs from source');
    console.log(`Config used: ${configFile} (its secret is \${DEMO_CLIENT_SECRET}; the emulator and servers stop with the demo)`);

    if (!opts.exit && process.stdout.isTTY) {
      say(`Temporal UI: http://localhost:${uiPort}  — press Ctrl-C to stop.`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
  } finally {
    await emu?.stop();
    await pgServer.stop();
    await env.teardown();
    say(`Demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  }
  return ok;
}
