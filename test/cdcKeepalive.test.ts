import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseConfig } from '../src/config/load';
import type { PoolRegistry } from '../src/db/pools';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import type { CallContext } from '../src/sync';
import type { CdcEngine } from '../src/sync/cdc';
import { lsnValue } from '../src/sync/cdc/lsn';
import { cdcEngineFor, joinAndLoad } from './helpers/cdcEngine';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';

// Finding 13 (issue 27): keepalives bypass pg-logical-replication's queue. The library queues each
// XLogData message and hands it over only once the previous one's handler settled, but emits a
// keepalive at once. A keepalive parsed behind queued changes must not confirm past them.
//
// The replication connection goes through a proxy that makes the case happen every time: from a
// commit on, it holds what the server sends until a keepalive that follows a second commit, then
// writes it all at once, so the reader parses [commit 1, begin 2, insert 2, commit 2, keepalive]
// in one read and the keepalive reaches it while transaction 2 waits in the library's queue. Every
// standby status the reader sends is checked against the target at that moment (its apply is slowed
// by a trigger, so the check sees the target as it was when the position was confirmed).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Splits a byte stream into PostgreSQL protocol messages (type byte + int32 length); `untyped` first messages have no type byte. */
function messages(onMessage: (m: Buffer) => void, untyped = 0): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const head = untyped > 0 ? 0 : 1;
      if (buf.length < head + 4) return;
      const len = head + buf.readUInt32BE(head);
      if (buf.length < len) return;
      const m = buf.subarray(0, len);
      buf = buf.subarray(len);
      if (untyped > 0) untyped--;
      onMessage(m);
    }
  };
}

interface Proxy {
  port: number;
  /** From the next commit on, hold the server's messages until a keepalive after a second commit. */
  arm: () => void;
  /** Flush positions the reader sent in standby status updates. */
  onStatus: (fn: (flush: bigint) => void) => void;
  /** How many held runs were written out (the case happened). */
  released: () => number;
  close: () => Promise<void>;
}

async function replicationProxy(upstreamPort: number): Promise<Proxy> {
  let armed = false;
  let released = 0;
  let status: (flush: bigint) => void = () => undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(up);
    let held: Buffer[] | null = null;
    let commits = 0;
    up.on(
      'data',
      messages((m) => {
        const copy = m[0] === 0x64 ? m.subarray(5) : null; // CopyData
        const xlog = copy?.[0] === 0x77; // 'w': XLogData; the pgoutput message starts at byte 25
        const keepalive = copy?.[0] === 0x6b; // 'k'
        if (held === null && armed && xlog && copy![25] === 0x43) {
          armed = false;
          held = [];
          commits = 0;
        }
        if (held === null) return void client.write(m);
        held.push(m);
        if (xlog && copy![25] === 0x43) commits++;
        if (keepalive && commits >= 2) {
          released++;
          client.write(Buffer.concat(held));
          held = null;
        }
      }),
    );
    client.on(
      'data',
      messages((m) => {
        up.write(m);
        // CopyData 'r' (standby status update): write, flush, apply positions.
        if (m[0] === 0x64 && m[5] === 0x72) status(m.readBigUInt64BE(5 + 9));
      }, 1),
    );
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    arm: () => void (armed = true),
    onStatus: (fn) => void (status = fn),
    released: () => released,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('cdc keepalives confirm nothing still queued in the replication library (finding 13)', () => {
  let server: LogicalServer;
  let cluster: EmbeddedCluster;
  let source: pg.Client;
  let target: pg.Client;
  let pools: PoolRegistry;
  let cdc: CdcEngine;
  let ctx: CallContext;
  let proxy: Proxy;

  before(async () => {
    server = await startLogicalServer('cdc-keepalive');
    ({ cluster, source, target } = server);
    await source.query(`CREATE TABLE ka (id int PRIMARY KEY, v text); INSERT INTO ka VALUES (1, 'one')`);
    proxy = await replicationProxy(cluster.options.port);
    const env = (database: string) => server.environment(database);
    const config = parseConfig({
      temporal: { taskQueue: 'cdc-keepalive-test' },
      profiles: { local: { auth: { method: 'password', password: 'trust-auth-ignores-this' }, environments: { src: env('src'), tgt: env('tgt') } } },
      pipelines: {
        // batchMs 1: each commit is applied as it arrives (the keepalive then finds the reader idle).
        ka: { source: { profile: 'local', environment: 'src', table: 'ka' }, target: { profile: 'local', environment: 'tgt', table: 'copy_ka' }, mode: 'cdc', key: ['id'], cdc: { slot: 'lbw_ka', batchMs: 1 } },
      },
    });
    ({ pools, cdc, ctx } = cdcEngineFor(config, { replicationPort: proxy.port }));
  });

  after(async () => {
    await pools?.end();
    await proxy?.close();
    await server?.close();
  });

  test('a keepalive parsed behind a queued transaction does not confirm it before it is applied', async () => {
    await joinAndLoad(cdc, ctx, 'ka');
    // A slow target: each applied row takes 300 ms, so a check made when a position is confirmed sees the target as it was then.
    await target.query(`
      CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$;
      CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON copy_ka FOR EACH ROW EXECUTE FUNCTION slow();`);

    const abort = new AbortController();
    const done = cdc.stream({ ...ctx, signal: abort.signal }, { pipeline: 'ka' });
    done.catch(() => undefined);
    await sleep(1_500); // the reader is connected and idle

    // Ten rounds: which of the keepalive's task and the queued begin runs first is up to the event
    // loop, so one round shows the loss only part of the time.
    const ROUNDS = 10;
    let between = 0n;
    let second = 0;
    const confirmedUnapplied: string[] = [];
    const checks: Promise<void>[] = [];
    proxy.onStatus((flush) => {
      if (between === 0n || flush <= between) return;
      const [id, after] = [second, between];
      checks.push(
        target.query<{ n: number }>(`SELECT count(*)::int AS n FROM copy_ka WHERE id = $1`, [id]).then(({ rows }) => {
          if (rows[0]!.n === 0) confirmedUnapplied.push(`flush ${flush.toString(16)} past transaction ${id} (after ${after.toString(16)}) before it was applied`);
        }),
      );
    });
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const first = 2 + 2 * round;
        proxy.arm();
        // Two transactions back to back; `between` lies after the first's commit and before the second's.
        // (One round trip, so the server sends both before its keepalive.)
        const results = (await source.query(
          `BEGIN; INSERT INTO ka VALUES (${first}, 'a'); COMMIT; SELECT pg_current_wal_insert_lsn()::text AS lsn; BEGIN; INSERT INTO ka VALUES (${first + 1}, 'b'); COMMIT`,
        )) as unknown as pg.QueryResult<{ lsn: string }>[];
        second = first + 1;
        between = lsnValue(results[3]!.rows[0]!.lsn);
        const deadline = Date.now() + 20_000;
        while ((await target.query<{ n: number }>(`SELECT count(*)::int AS n FROM copy_ka`)).rows[0]!.n < first + 1) {
          assert.ok(Date.now() < deadline, 'the reader did not apply both transactions within 20 s');
          await sleep(50);
        }
        await sleep(300);
        await Promise.all(checks);
        between = 0n;
      }
    } finally {
      abort.abort();
      await done.catch(() => undefined);
    }
    await Promise.all(checks);
    assert.equal(proxy.released(), ROUNDS, 'each round the proxy held commit 1 to the keepalive after commit 2');
    assert.ok(checks.length >= ROUNDS, 'the reader confirmed each second transaction at some point');
    assert.deepEqual(confirmedUnapplied, []);
  });
});
