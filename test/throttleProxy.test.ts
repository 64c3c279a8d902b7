import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startThrottleProxy, type ThrottleProxy } from '../bench/throttle-proxy';
import { ADMIN_URL } from './helpers/db';

/** A server that sends `bytes` bytes to every client, then closes. */
async function blaster(bytes: number): Promise<{ port: number; close(): Promise<void> }> {
  const payload = Buffer.alloc(bytes, 7);
  const server = net.createServer((s) => s.end(payload));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

/** Reads everything one connection gets; returns bytes, seconds to first byte and to the end. */
function download(port: number): Promise<{ bytes: number; firstByte: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    let firstByte = -1;
    const s = net.connect(port, '127.0.0.1');
    s.on('data', (b) => {
      if (firstByte < 0) firstByte = (performance.now() - t0) / 1000;
      bytes += b.length;
    });
    s.on('end', () => resolve({ bytes, firstByte, seconds: (performance.now() - t0) / 1000 }));
    s.on('error', reject);
  });
}

describe('bench throttle proxy (the "remote Lakebase" of the benchmark)', () => {
  const SIZE = 1_000_000;
  const RATE = 2_000_000; // bytes/s per connection: 1 MB takes about 0.5 s
  let upstream: Awaited<ReturnType<typeof blaster>>;
  let proxy: ThrottleProxy;
  before(async () => {
    upstream = await blaster(SIZE);
    proxy = await startThrottleProxy({ target: { host: '127.0.0.1', port: upstream.port }, bytesPerSecond: RATE, latencyMs: 100 });
  });
  after(async () => {
    await proxy.close();
    await upstream.close();
  });

  test('one connection is limited to its rate and delayed by the latency', async () => {
    const r = await download(proxy.port);
    assert.equal(r.bytes, SIZE);
    assert.ok(r.firstByte >= 0.09, `first byte after ${r.firstByte} s, expected ≥ 0.1 s of added latency`);
    // 1 MB at 2 MB/s = 0.5 s, plus the latency; the initial burst is 20 ms worth.
    assert.ok(r.seconds >= 0.5, `1 MB arrived in ${r.seconds.toFixed(3)} s: faster than 2 MB/s`);
    assert.ok(r.seconds < 1.5, `1 MB took ${r.seconds.toFixed(3)} s: far slower than 2 MB/s`);
  });

  test('the limit is per connection: four at once each get the full rate', async () => {
    const t0 = performance.now();
    const all = await Promise.all([1, 2, 3, 4].map(() => download(proxy.port)));
    const total = (performance.now() - t0) / 1000;
    for (const r of all) assert.equal(r.bytes, SIZE);
    // 4 MB through one shared 2 MB/s pipe would take ≥ 2 s; per-connection buckets take ≈ 0.6 s.
    assert.ok(total >= 0.5 && total < 1.6, `four 1 MB downloads took ${total.toFixed(3)} s together`);
  });

  test('PostgreSQL works through it (extended protocol, COPY)', async () => {
    const u = new URL(ADMIN_URL);
    const pgProxy = await startThrottleProxy({ target: { host: u.hostname, port: Number(u.port || 5432) }, bytesPerSecond: 4_000_000, latencyMs: 5 });
    const viaProxy = new URL(ADMIN_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(pgProxy.port);
    const c = new pg.Client({ connectionString: viaProxy.toString() });
    try {
      await c.connect();
      const { rows } = await c.query<{ n: number; s: string }>('SELECT $1::int + 1 AS n, repeat($2, 200000) AS s', [41, 'x']);
      assert.equal(rows[0]!.n, 42);
      assert.equal(rows[0]!.s.length, 200_000);
      assert.ok(pgProxy.bytesDown() > 200_000);
    } finally {
      await c.end().catch(() => undefined);
      await pgProxy.close();
    }
  });
});
