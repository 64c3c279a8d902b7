import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import YAML from 'yaml';
import { cdcProgress, startCdc, stopCdc } from '../src/client/cdc';
import { cdcProgressQuery } from '../src/workflows/cdcStream';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import { startTemporal, uniqueQueue } from './helpers/temporal';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';

// `cdc start` to `cdc stop --drop-slot` on a real Temporal dev server and an embedded PostgreSQL
// with wal_level=logical: the copy, a mixed load with a worker SIGKILLed mid-stream, a new column.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const COLS = ['id', 'qty', 'note', 'big'];

describe('cdc pipeline end to end (Temporal dev server, embedded PostgreSQL with wal_level=logical)', () => {
  let env: TestWorkflowEnvironment;
  let server: LogicalServer;
  let source: pg.Client;
  let target: pg.Client;
  let raw: Record<string, unknown>;
  let config: Config;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    [env, server] = await Promise.all([startTemporal(), startLogicalServer('cdc-e2e', { databases: ['shop', 'reporting'] })]);
    ({ source, target } = server);
    await source.query(`
      CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, note text, big text);
      ALTER TABLE orders ALTER COLUMN big SET STORAGE EXTERNAL;
      INSERT INTO orders SELECT g, g % 10, 'n' || g, CASE WHEN g % 100 = 0 THEN (SELECT string_agg(md5(g::text || i), '') FROM generate_series(1, 400) i) END FROM generate_series(1, 20000) g;`);
    const environment = (database: string) => server.environment(database);
    raw = {
      temporal: { address: env.address, taskQueue: 'unused' },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { shop: environment('shop'), reporting: environment('reporting') } } },
      pipelines: {
        'orders-cdc': {
          source: { profile: 'local', environment: 'shop', table: 'orders' },
          target: { profile: 'local', environment: 'reporting', table: 'orders' },
          mode: 'cdc',
          key: ['id'],
          batchRows: 4000,
          cdc: { batchRows: 2000, batchMs: 200 },
        },
      },
    };
    config = parseConfig(raw);
  });

  after(async () => {
    await server?.close();
    await env?.teardown();
  });

  const equal = async (columns: string[]) => {
    const [a, b] = await Promise.all([relationChecksum(source, 'orders', columns, ['id']), relationChecksum(target, 'orders', columns, ['id'])]);
    return a.rows === b.rows && a.md5 === b.md5;
  };

  test('copies the table, stays equal under mixed load and a worker SIGKILL (TOASTed values intact), carries a new column; stop --drop-slot leaves no slot', async () => {
    const taskQueue = uniqueQueue('cdc');
    const file = path.join(server.dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify({ ...raw, temporal: { address: env.address, taskQueue }, worker: { opsPort: 0 } }));
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    const exited = new Promise((r) => child.once('exit', r));
    const { workflowId, slot } = await startCdc(env.client, { config, pipeline: 'orders-cdc', taskQueue, stream: { runSeconds: 5, heartbeatTimeout: '3 seconds' } });
    assert.equal(workflowId, 'cdc:lbw_shop');

    // A mixed load while the copy and then the stream run: updates (TOASTed rows among them), inserts, deletes.
    let loading = true;
    let next = 20001;
    const load = (async () => {
      for (let i = 0; loading; i++) {
        await source.query(`UPDATE orders SET qty = qty + 1 WHERE id % 97 = $1`, [i % 97]);
        await source.query(`INSERT INTO orders SELECT g, 1, 'new', NULL FROM generate_series($1::int, $1::int + 49) g`, [next]);
        next += 50;
        await source.query(`DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE id % 89 = $1 LIMIT 5)`, [i % 89]);
        await sleep(20);
      }
    })();

    const streaming = async () => {
      for (;;) {
        const { progress } = await cdcProgress(env.client, config, 'orders-cdc');
        if (progress?.pipelines['orders-cdc'] === 'streaming' && progress.segments >= 1) return progress;
        await sleep(200);
      }
    };
    await streaming();
    child.kill('SIGKILL');
    await exited;
    await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue }).then((w) =>
      w.runUntil(async () => {
        await sleep(2_000); // load goes on against the new worker
        loading = false;
        await load;
        await source.query(`ALTER TABLE orders ADD COLUMN shipped date`);
        await source.query(`UPDATE orders SET shipped = DATE '2026-11-27' WHERE id % 7 = 0`);
        // Caught up once every column matches, the new one included (until it is added, the query fails: not yet).
        const withShipped = [...COLS, 'shipped'];
        const deadline = Date.now() + 120_000;
        while (!(await equal(withShipped).catch(() => false))) {
          assert.ok(Date.now() < deadline, 'the target did not catch up within 2 minutes');
          await sleep(250);
        }
        assert.deepEqual(await relationChecksum(target, 'orders', withShipped, ['id']), await relationChecksum(source, 'orders', withShipped, ['id']));
        const toasted = `SELECT count(*) FILTER (WHERE big IS NOT NULL)::int AS n FROM orders`;
        const [s, t] = await Promise.all([source.query(toasted), target.query(toasted)]);
        assert.ok(s.rows[0].n > 150, `${s.rows[0].n} TOASTed values in the source`);
        assert.equal(t.rows[0].n, s.rows[0].n, 'every TOASTed value survived the updates that left it unchanged');
        const status = (await cdcProgress(env.client, config, 'orders-cdc')).progress!;
        assert.equal(status.slot, slot);
        assert.ok(status.rowsApplied > 0 && status.retainedWalBytes > 0, JSON.stringify(status));
        const stopped = await stopCdc(env.client, { config, pipeline: 'orders-cdc', dropSlot: true });
        assert.equal(stopped.ended?.stopped, true);
      }),
    );
    const { rows } = await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    assert.equal(rows[0].n, 0, 'cdc stop --drop-slot leaves no slot behind');
  });

  test("the UI's current details follow a running segment (segments run for an hour); an idle stream sends no figures", async () => {
    await source.query(`CREATE TABLE ticks (id int PRIMARY KEY, n int NOT NULL); INSERT INTO ticks SELECT g, 0 FROM generate_series(1, 100) g`);
    const ticks = parseConfig({
      ...raw,
      pipelines: { ticks: { source: { profile: 'local', environment: 'shop', table: 'ticks' }, target: { profile: 'local', environment: 'reporting', table: 'ticks' }, mode: 'cdc', key: ['id'], cdc: { batchMs: 100 } } },
    });
    const taskQueue = uniqueQueue('cdc-figures');
    await createLakebaseWorker({ config: ticks, logger, connection: env.nativeConnection, taskQueue }).then((w) =>
      w.runUntil(async () => {
        const { workflowId } = await startCdc(env.client, { config: ticks, pipeline: 'ticks', taskQueue, stream: { runSeconds: 600, heartbeatTimeout: '10 seconds', figuresSeconds: 1 } });
        const handle = env.client.workflow.getHandle(workflowId);
        const details = async () => ((await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ?? '';
        const figureSignals = async () => {
          const { events } = await handle.fetchHistory();
          return (events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'cdcFigures').length;
        };
        for (let deadline = Date.now() + 60_000; (await cdcProgress(env.client, ticks, 'ticks')).progress?.pipelines.ticks !== 'streaming'; await sleep(200))
          assert.ok(Date.now() < deadline, 'the pipeline did not start streaming within a minute');
        // The first segment runs for 10 minutes: the details must show each change's rows long before it ends.
        const appliedShown = async (rows: number) => {
          let shown = '';
          for (let deadline = Date.now() + 30_000; Number(/([\d,]+) rows applied/.exec(shown)?.[1]?.replace(/,/g, '') ?? -1) < rows; await sleep(250)) {
            if (Date.now() > deadline) assert.fail(`the current details did not show ${rows} rows applied within 30 s: ${shown}; ${await figureSignals()} figures signals`);
            shown = await details();
          }
        };
        await source.query(`UPDATE ticks SET n = n + 1`);
        await appliedShown(100);
        await source.query(`INSERT INTO ticks SELECT g, 1 FROM generate_series(101, 200) g`);
        await appliedShown(200);
        const progress = await handle.query(cdcProgressQuery);
        assert.equal(progress.segments, 0, 'still in the first segment');
        assert.ok(progress.rowsApplied >= 200, JSON.stringify(progress));
        // Nothing changes now: no more figures signals (history grows only with the stream's work).
        await sleep(3_000);
        const quiet = await figureSignals();
        assert.ok(quiet >= 1, 'the figures came by signal');
        await sleep(4_000);
        assert.equal(await figureSignals(), quiet, 'an idle stream sends no figures');
        const stopped = await stopCdc(env.client, { config: ticks, pipeline: 'ticks', dropSlot: true });
        assert.equal(stopped.ended?.stopped, true);
      }),
    );
  });
});
