// cdc start | status | stop through the CLI, as a user runs them: a real Temporal dev server, a
// worker, an embedded PostgreSQL with wal_level=logical, and the machine's shared server
// (wal_level=replica, used read only) for the wal_level case.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import { cleanUp } from './helpers/cleanup';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';

const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cdc lifecycle through the CLI (Temporal dev server, embedded PostgreSQL with wal_level=logical)', () => {
  let env: TestWorkflowEnvironment;
  let server: LogicalServer;
  let machine: TestDatabase;
  let source: pg.Client;
  let target: pg.Client;
  let file: string;
  let worker: { stop(): Promise<void> } | undefined;

  before(async () => {
    [env, machine, server] = await Promise.all([startTemporal(), createTestDatabase('cdccli'), startLogicalServer('cdc-cli', { databases: ['shop', 'reporting'] })]);
    ({ source, target } = server);
    await source.query(`
      CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, note text);
      INSERT INTO orders SELECT g, g % 10, 'n' || g FROM generate_series(1, 1000) g;
      CREATE TABLE nokey (id int, v text);
      INSERT INTO nokey SELECT g, 'v' || g FROM generate_series(1, 20) g;
      CREATE TABLE pair_a (id int PRIMARY KEY, v text);
      CREATE TABLE pair_b (id int PRIMARY KEY, v text);
      INSERT INTO pair_a SELECT g, 'a' || g FROM generate_series(1, 100) g;
      INSERT INTO pair_b SELECT g, 'b' || g FROM generate_series(1, 100) g;
      CREATE TABLE rc_a (id int PRIMARY KEY, v text);
      CREATE TABLE rc_b (id int PRIMARY KEY, v text);
      INSERT INTO rc_a SELECT g, 'a' || g FROM generate_series(1, 500) g;
      INSERT INTO rc_b SELECT g, 'b' || g FROM generate_series(1, 100) g;
      CREATE TABLE guarded (id int PRIMARY KEY, v text);
      CREATE ROLE noc LOGIN;
      CREATE TABLE rs_a (id int PRIMARY KEY, v text);
      CREATE TABLE rs_b (id int PRIMARY KEY, v text);
      CREATE TABLE solo (id int PRIMARY KEY, v text);
      INSERT INTO rs_a SELECT g, 'a' || g FROM generate_series(1, 400) g;
      INSERT INTO rs_b SELECT g, 'b' || g FROM generate_series(1, 100) g;
      INSERT INTO solo SELECT g, 's' || g FROM generate_series(1, 200) g;
      CREATE TABLE lonely (id int PRIMARY KEY, v text);
      INSERT INTO lonely SELECT g, 'l' || g FROM generate_series(1, 100) g;`);
    await machine.client.query(`CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders VALUES (1, 'a')`);
    const taskQueue = uniqueQueue('cdccli');
    const e = (database: string) => server.environment(database);
    const pipeline = (table: string, slot: string, more: Record<string, unknown> = {}) => ({
      source: { profile: 'local', environment: 'shop', table },
      target: { profile: 'local', environment: 'reporting', table },
      mode: 'cdc',
      key: ['id'],
      cdc: { slot, batchRows: 2000, batchMs: 200 },
      ...more,
    });
    const raw = {
      temporal: { address: env.address, taskQueue },
      profiles: {
        local: { auth: { method: 'password', password: 'trust' }, environments: { shop: e('shop'), reporting: e('reporting'), locked: { ...e('reporting'), user: 'noc' } } },
        machine: { auth: { method: 'password', password: 'trust' }, environments: { replica: machine.environment } },
      },
      pipelines: {
        orders: pipeline('orders', 'lbw_orders'),
        nokey: pipeline('nokey', 'lbw_nokey'),
        pair_a: pipeline('pair_a', 'lbw_pair'),
        pair_b: pipeline('pair_b', 'lbw_pair'),
        lonely: pipeline('lonely', 'lbw_lonely'),
        rc_a: pipeline('rc_a', 'lbw_rc'),
        // The source passes every check; the target's role may not create the state schema: the join itself fails.
        guarded: { ...pipeline('guarded', 'lbw_guarded'), target: { profile: 'local', environment: 'locked', table: 'guarded' } },
        rc_b: pipeline('rc_b', 'lbw_rc'),
        rs_a: pipeline('rs_a', 'lbw_rs'),
        rs_b: pipeline('rs_b', 'lbw_rs'),
        solo: pipeline('solo', 'lbw_solo'),
        machine: { ...pipeline('orders', 'lbw_machine'), source: { profile: 'machine', environment: 'replica', table: 'orders' }, target: { profile: 'local', environment: 'reporting', table: 'machine_orders' } },
      },
      syncGroups: { pair: { pipelines: ['pair_a', 'pair_b'] }, rc: { pipelines: ['rc_a', 'rc_b'] }, rs: { pipelines: ['rs_a', 'rs_b'] } },
      worker: { opsPort: 0 },
    };
    file = path.join(server.dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(raw));
    worker = await runWorkerInBackground({ config: parseConfig(raw), logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
  });

  after(() =>
    cleanUp(
      () => worker?.stop(),
      () => machine?.close(),
      () => server?.close(),
      () => env?.teardown(),
    ),
  );

  /** One CLI command as a user runs it: its exit status and what it printed. */
  function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [CLI, ...args, '--config', file], { env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out: `$ ${args.join(' ')}\n${out}` })));
  }

  const slotExists = async (slot: string) => (await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0].n === 1;
  const equal = async (table: string, columns: string[]) => {
    const [a, b] = await Promise.all([relationChecksum(source, table, columns, ['id']), relationChecksum(target, table, columns, ['id']).catch(() => null)]);
    return !!b && a.rows === b.rows && a.md5 === b.md5;
  };
  async function converged(table: string, columns: string[], ms = 90_000) {
    const deadline = Date.now() + ms;
    while (!(await equal(table, columns))) {
      if (Date.now() > deadline) {
        const [s, t] = await Promise.all([source.query(`SELECT count(*)::int AS n FROM ${table}`), target.query(`SELECT count(*)::int AS n FROM ${table}`)]);
        assert.fail(`${table}: target did not converge within ${ms / 1000} s (source ${s.rows[0].n} rows, target ${t.rows[0].n})`);
      }
      await sleep(300);
    }
  }
  const notStarted = async (slot: string) =>
    assert.rejects(env.client.workflow.getHandle(`cdc:${slot}`).describe(), (err) => err instanceof WorkflowNotFoundError, `no stream workflow for ${slot}`);

  test('a table without a primary key: cdc start exits 1 with the statement that fixes it; nothing is started or published; the source keeps taking UPDATE and DELETE', async () => {
    const r = await cli('cdc', 'start', '--pipeline', 'nokey');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /nokey: not started, the source is not ready for cdc \(nothing was changed\)/, r.out);
    assert.match(r.out, /fix: run ALTER TABLE public\.nokey ADD PRIMARY KEY \("id"\), or ALTER TABLE public\.nokey REPLICA IDENTITY FULL/, r.out);
    await notStarted('lbw_nokey');
    assert.equal((await source.query(`SELECT count(*)::int AS n FROM pg_publication_tables WHERE tablename = 'nokey'`)).rows[0].n, 0);
    assert.equal(await slotExists('lbw_nokey'), false);
    await source.query(`UPDATE nokey SET v = 'still fine' WHERE id = 1`);
    await source.query(`DELETE FROM nokey WHERE id = 2`);
    const dry = await cli('cdc', 'start', '--pipeline', 'nokey', '--dry-run');
    assert.equal(dry.code, 1, dry.out);
    assert.match(dry.out, /✗ cdc replica identity: public\.nokey has no primary key/, dry.out);
    const tc = await cli('test-connection', '--pipeline', 'nokey');
    assert.equal(tc.code, 1, tc.out);
    assert.match(tc.out, /✗ cdc replica identity/, tc.out);
  });

  test('wal_level=replica: cdc start exits 1 naming wal_level and its fix (not "joined", exit 0)', async () => {
    const r = await cli('cdc', 'start', '--pipeline', 'machine');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /✗ cdc wal_level: wal_level is replica on the source/, r.out);
    assert.match(r.out, /fix: run ALTER SYSTEM SET wal_level = logical and restart the source server/, r.out);
    assert.doesNotMatch(r.out, /joined/);
    await notStarted('lbw_machine');
    assert.equal((await machine.client.query(`SELECT count(*)::int AS n FROM pg_publication`)).rows[0].n, 0);
  });

  test("cdc start waits for the join's answer: a join the stream refuses is printed with its failure, exit 1", async () => {
    const r = await cli('cdc', 'start', '--pipeline', 'guarded');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /guarded: did not join cdc:lbw_guarded: LakebaseSqlError: cdcJoin\(guarded\) failed: permission denied for database reporting; SQLSTATE 42501/, r.out);
    assert.doesNotMatch(r.out, /guarded joined/);
  });

  test('stop (slot kept), then deletes, updates and inserts, then start: it resumes from its checkpoint and converges; status tells the truth at each step', async () => {
    const started = await cli('cdc', 'start', '--pipeline', 'orders');
    assert.equal(started.code, 0, started.out);
    assert.match(started.out, /orders joined cdc:lbw_orders \(slot lbw_orders\): (copying the table, then )?streaming/, started.out);
    await source.query(`UPDATE orders SET qty = qty + 1 WHERE id % 5 = 0`);
    await converged('orders', ['id', 'qty', 'note']);
    const streaming = await cli('cdc', 'status', '--pipeline', 'orders');
    assert.equal(streaming.code, 0, streaming.out);
    assert.match(streaming.out, /^pipeline orders: streaming$/m, streaming.out);
    assert.match(streaming.out, /slot lbw_orders \(publication lbw_shop\): being read \(active\); wal_status reserved/, streaming.out);
    assert.match(streaming.out, /applied LSN [0-9A-F]+\/[0-9A-F]+ · confirmed [0-9A-F]+\/[0-9A-F]+ · current [0-9A-F]+\/[0-9A-F]+/, streaming.out);
    assert.match(streaming.out, /lag [\d,]+ bytes/, streaming.out);

    const stopped = await cli('cdc', 'stop', '--pipeline', 'orders');
    assert.equal(stopped.code, 0, stopped.out);
    assert.match(stopped.out, /stream of slot lbw_orders stopped; the slot and orders's checkpoint are kept/, stopped.out);
    assert.equal(await slotExists('lbw_orders'), true);
    const startLsn = async () => (await target.query(`SELECT start_lsn::text AS l FROM lakebase_worker.cdc_state WHERE pipeline = 'orders'`)).rows[0]?.l as string | undefined;
    const before = await startLsn();
    assert.ok(before, 'the stop kept the pipeline\'s state');
    // While stopped: deletes, updates and inserts the next start must carry.
    await source.query(`DELETE FROM orders WHERE id % 50 = 0; UPDATE orders SET note = 'while stopped' WHERE id % 7 = 0; INSERT INTO orders SELECT g, 1, 'new' FROM generate_series(2001, 2020) g`);
    const idle = await cli('cdc', 'status', '--pipeline', 'orders');
    assert.equal(idle.code, 1, idle.out);
    assert.match(idle.out, /pipeline orders: stopped \(no stream running; its checkpoint is kept at [0-9A-F]+\/[0-9A-F]+: cdc start resumes from it\)/, idle.out);
    assert.match(idle.out, /slot lbw_orders \(publication lbw_shop\): not being read/, idle.out);

    const resumed = await cli('cdc', 'start', '--pipeline', 'orders');
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, /orders joined cdc:lbw_orders \(slot lbw_orders\): streaming/, resumed.out);
    await converged('orders', ['id', 'qty', 'note']);
    assert.equal(await startLsn(), before, 'resumed from its checkpoint, not copied anew');
    const { rows } = await target.query(`SELECT count(*)::int AS n FROM orders`);
    assert.equal(rows[0].n, 1000 - 20 + 20);
    const done = await cli('cdc', 'stop', '--pipeline', 'orders', '--drop-slot');
    assert.equal(done.code, 0, done.out);
    assert.match(done.out, /slot dropped/, done.out);
    assert.equal(await slotExists('lbw_orders'), false);
  });

  test('a group: cdc start|status --group over its cdc pipelines; each stop --drop-slot, and the slot goes after the last one leaves', async () => {
    const started = await cli('cdc', 'start', '--group', 'pair');
    assert.equal(started.code, 0, started.out);
    assert.match(started.out, /pair_a joined cdc:lbw_pair/, started.out);
    assert.match(started.out, /pair_b joined cdc:lbw_pair/, started.out);
    await source.query(`UPDATE pair_a SET v = 'x' WHERE id < 10; DELETE FROM pair_b WHERE id > 90`);
    await converged('pair_a', ['id', 'v']);
    await converged('pair_b', ['id', 'v']);
    const status = await cli('cdc', 'status', '--group', 'pair');
    assert.equal(status.code, 0, status.out);
    assert.match(status.out, /^pipeline pair_a: streaming$/m, status.out);
    assert.match(status.out, /^pipeline pair_b: streaming$/m, status.out);
    // The reader's connection is cut: the stream retries, and status shows the failure it retries after.
    const { rows: [reader] } = await source.query(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = 'lbw_pair' AND active`);
    assert.ok(reader?.pid, 'the stream reads the slot');
    await source.query(`SELECT pg_terminate_backend($1)`, [reader.pid]);
    const deadline = Date.now() + 60_000;
    let retried = await cli('cdc', 'status', '--pipeline', 'pair_a');
    while (!/^last failure: /m.test(retried.out) && Date.now() < deadline) retried = await cli('cdc', 'status', '--pipeline', 'pair_a');
    assert.match(retried.out, /^last failure: cdcStream attempt \d+ failed: \w+: .*terminat/im, retried.out);
    await source.query(`UPDATE pair_a SET v = 'after the cut' WHERE id = 1`);
    await converged('pair_a', ['id', 'v']);
    const first = await cli('cdc', 'stop', '--pipeline', 'pair_a', '--drop-slot');
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /pair_a left the stream of slot lbw_pair; pair_b keeps it/, first.out);
    assert.equal(await slotExists('lbw_pair'), true);
    const last = await cli('cdc', 'stop', '--pipeline', 'pair_b', '--drop-slot');
    assert.equal(last.code, 0, last.out);
    assert.match(last.out, /stream of slot lbw_pair stopped; slot dropped/, last.out);
    assert.equal(await slotExists('lbw_pair'), false);
  });

  test('stop while another pipeline keeps the slot, deletes meanwhile, start: the copy into the populated target converges, deletes included', async () => {
    const started = await cli('cdc', 'start', '--group', 'rc');
    assert.equal(started.code, 0, started.out);
    await converged('rc_a', ['id', 'v']);
    await converged('rc_b', ['id', 'v']);
    const stopped = await cli('cdc', 'stop', '--pipeline', 'rc_a');
    assert.equal(stopped.code, 0, stopped.out);
    assert.match(stopped.out, /rc_a left the stream of slot lbw_rc; rc_b keeps it; rc_a copies its table anew at the next start/, stopped.out);
    await source.query(`DELETE FROM rc_a WHERE id % 25 = 0; UPDATE rc_a SET v = 'while stopped' WHERE id % 9 = 0; INSERT INTO rc_a VALUES (9001, 'new')`);
    const again = await cli('cdc', 'start', '--pipeline', 'rc_a');
    assert.equal(again.code, 0, again.out);
    await converged('rc_a', ['id', 'v'], 60_000);
    assert.equal((await target.query(`SELECT count(*)::int AS n FROM rc_a`)).rows[0].n, 500 - 20 + 1);
    const done = await cli('cdc', 'stop', '--group', 'rc', '--drop-slot');
    assert.equal(done.code, 0, done.out);
    assert.equal(await slotExists('lbw_rc'), false, done.out);
  });

  test('cdc resync: a target edited behind the stream is copied anew while the slot streams on for the other pipeline, with no new slot; a slot of one pipeline restarts its stream', async () => {
    const started = await cli('cdc', 'start', '--group', 'rs');
    assert.equal(started.code, 0, started.out);
    await converged('rs_a', ['id', 'v']);
    await converged('rs_b', ['id', 'v']);
    const startLsn = async (p: string) => (await target.query(`SELECT start_lsn::text AS l FROM lakebase_worker.cdc_state WHERE pipeline = $1`, [p])).rows[0]?.l as string;
    const [beforeA, beforeB] = [await startLsn('rs_a'), await startLsn('rs_b')];
    const slotBefore = (await source.query(`SELECT xmin::text AS x, catalog_xmin::text AS c FROM pg_replication_slots WHERE slot_name = 'lbw_rs'`)).rows.length;
    // Behind the stream's back: rows deleted, changed and added in the target only.
    await target.query(`DELETE FROM rs_a WHERE id % 20 = 0; UPDATE rs_a SET v = 'edited' WHERE id % 13 = 0; INSERT INTO rs_a VALUES (7777, 'stray')`);
    assert.equal(await equal('rs_a', ['id', 'v']), false);
    // The source keeps changing both tables while the resync runs.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await source.query(`UPDATE rs_a SET v = 'live ${i}' WHERE id = ${1 + (i % 400)}; UPDATE rs_b SET v = 'live ${i}' WHERE id = ${1 + (i % 100)}; INSERT INTO rs_b VALUES (${1000 + i}, 'n')`);
        await sleep(20);
      }
    })();
    const resynced = await cli('cdc', 'resync', '--pipeline', 'rs_a');
    writing = false;
    await writer;
    assert.equal(resynced.code, 0, resynced.out);
    // A 400-row copy may end before the CLI's first look: "copying" is not always seen.
    assert.match(resynced.out, /rs_a joined cdc:lbw_rs \(slot lbw_rs\): (copying the table, then )?streaming/, resynced.out);
    await converged('rs_a', ['id', 'v'], 60_000);
    await converged('rs_b', ['id', 'v'], 60_000);
    assert.notEqual(await startLsn('rs_a'), beforeA, 'rs_a was copied anew from a new start');
    assert.equal(await startLsn('rs_b'), beforeB, 'rs_b streamed on from where it was');
    assert.equal((await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'lbw_rs%'`)).rows[0].n, slotBefore, 'no new slot');
    assert.equal((await target.query(`SELECT count(*)::int AS n FROM rs_a WHERE id = 7777`)).rows[0].n, 0, 'the stray target row is gone');
    const status = await cli('cdc', 'status', '--pipeline', 'rs_a');
    assert.match(status.out, /^pipeline rs_a: streaming$/m, status.out);

    // The only pipeline of its slot: its stream stops and starts again; the slot is kept.
    assert.equal((await cli('cdc', 'start', '--pipeline', 'solo')).code, 0);
    await converged('solo', ['id', 'v']);
    await target.query(`DELETE FROM solo WHERE id <= 10`);
    const solo = await cli('cdc', 'resync', '--pipeline', 'solo');
    assert.equal(solo.code, 0, solo.out);
    await source.query(`UPDATE solo SET v = 'after' WHERE id = 150`);
    await converged('solo', ['id', 'v'], 60_000);
    assert.equal(await slotExists('lbw_solo'), true);

    const notStartedYet = await cli('cdc', 'resync', '--pipeline', 'lonely');
    assert.equal(notStartedYet.code, 1, notStartedYet.out);
    assert.match(notStartedYet.out, /lonely: not started, so there is nothing to copy anew; cdc start --pipeline lonely copies it/, notStartedYet.out);
    for (const args of [['--group', 'rs'], ['--pipeline', 'solo']]) assert.equal((await cli('cdc', 'stop', ...args, '--drop-slot')).code, 0);
  });

  test('after the stream ended without a stop (failed, terminated): stop --drop-slot still drops the slot', async () => {
    const started = await cli('cdc', 'start', '--pipeline', 'lonely');
    assert.equal(started.code, 0, started.out);
    await converged('lonely', ['id', 'v']);
    await env.client.workflow.getHandle('cdc:lbw_lonely').terminate('the stream failed');
    assert.equal(await slotExists('lbw_lonely'), true);
    const stopped = await cli('cdc', 'stop', '--pipeline', 'lonely', '--drop-slot');
    assert.equal(stopped.code, 0, stopped.out);
    assert.match(stopped.out, /lonely: no stream was running; slot lbw_lonely dropped/, stopped.out);
    assert.equal(await slotExists('lbw_lonely'), false);
  });
});
