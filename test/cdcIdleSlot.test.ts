import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseConfig } from '../src/config/load';
import type { PoolRegistry } from '../src/db/pools';
import type { CallContext } from '../src/sync';
import type { CdcEngine } from '../src/sync/cdc';
import { cdcEngineFor, joinAndLoad } from './helpers/cdcEngine';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';

// Issue 27 §8: the slot must advance while the published tables stay idle and the database (and the
// cluster) are busy, or the source keeps WAL it will never need. PeerDB writes a logical message
// for this; a stream that never writes to the source (issue 30 wants read-only credentials there)
// relies on the walsender's keepalives instead, which carry the WAL end and are confirmed once
// nothing received is unapplied (docs/cdc.md, Keepalives). This holds that rule to its promise:
// retained WAL stays bounded while other tables write far more than that.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

describe('a cdc slot whose published table is idle while the database is busy (issue 27 §8)', () => {
  let server: LogicalServer;
  let source: pg.Client;
  let other: pg.Client;
  let pools: PoolRegistry;
  let cdc: CdcEngine;
  let ctx: CallContext;

  before(async () => {
    // Checkpoints every 30 s of WAL at most, so restart_lsn can only follow a confirm, not a timer.
    server = await startLogicalServer('cdc-idle', { settings: { max_wal_size: '256MB', checkpoint_timeout: '30s' } });
    ({ source } = server);
    await source.query(`CREATE TABLE quiet (id int PRIMARY KEY, v text); INSERT INTO quiet VALUES (1, 'one'); CREATE TABLE busy (id bigint, v text)`);
    other = new pg.Client({ connectionString: server.url('tgt') });
    await other.connect();
    await other.query(`CREATE TABLE elsewhere (id bigint, v text)`);
    const config = parseConfig({
      temporal: { taskQueue: 'cdc-idle-test' },
      profiles: { local: { auth: { method: 'password', password: 'trust-auth-ignores-this' }, environments: { src: server.environment('src'), tgt: server.environment('tgt') } } },
      pipelines: { quiet: { source: { profile: 'local', environment: 'src', table: 'quiet' }, target: { profile: 'local', environment: 'tgt', table: 'copy_quiet' }, mode: 'cdc', key: ['id'], cdc: { slot: 'lbw_idle', batchMs: 200 } } },
    });
    ({ pools, cdc, ctx } = cdcEngineFor(config));
  });

  after(async () => {
    await other?.end();
    await pools?.end();
    await server?.close();
  });

  test('other tables and another database write 150 MB of WAL: the slot follows, retaining a bounded amount', async () => {
    await joinAndLoad(cdc, ctx, 'quiet');

    const slot = async () =>
      (
        await source.query<{ retained: string; unconfirmed: string; current: string }>(
          `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8::text AS retained, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8::text AS unconfirmed, pg_current_wal_lsn()::text AS current
           FROM pg_replication_slots WHERE slot_name = 'lbw_idle'`,
        )
      ).rows[0]!;
    const startLsn = (await slot()).current;
    const abort = new AbortController();
    const done = cdc.stream({ ...ctx, signal: abort.signal }, { pipeline: 'quiet' });
    done.catch(() => undefined);
    const seen: number[] = [];
    try {
      // About 150 MB of WAL, half in an unpublished table of the source database, half in another database.
      for (let i = 0; i < 30; i++) {
        await Promise.all([
          source.query(`INSERT INTO busy SELECT g, repeat('x', 200) FROM generate_series(1, 10000) g`),
          other.query(`INSERT INTO elsewhere SELECT g, repeat('y', 200) FROM generate_series(1, 10000) g`),
        ]);
        if (i % 10 === 9) await source.query('CHECKPOINT');
        seen.push(Number((await slot()).retained));
      }
      // Keepalives come at least every wal_sender_timeout / 2 (30 s), sooner when the server asks for a reply.
      const deadline = Date.now() + 45_000;
      let s = await slot();
      while (Number(s.retained) > 32 * MB && Date.now() < deadline) {
        await source.query('CHECKPOINT');
        await sleep(1_000);
        s = await slot();
      }
      const written = Number((await source.query<{ n: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::int8::text AS n`, [startLsn])).rows[0]!.n);
      assert.ok(written > 100 * MB, `the load wrote ${Math.round(written / MB)} MB of WAL`);
      assert.ok(Number(s.unconfirmed) < 32 * MB, `the slot confirmed up to ${Math.round(Number(s.unconfirmed) / MB)} MB behind the WAL end (retained while loading: ${seen.map((x) => Math.round(x / MB)).join(', ')} MB)`);
      assert.ok(Number(s.retained) < 32 * MB, `the slot retains ${Math.round(Number(s.retained) / MB)} MB of ${Math.round(written / MB)} MB written`);
    } finally {
      abort.abort();
      await done.catch(() => undefined);
    }
  });
});
