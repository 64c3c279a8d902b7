import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { EmbeddedCluster, EmbeddedPostgresError } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';

describe('embedded PostgreSQL (the fallback of npm test and the demo)', () => {
  let base: string;
  let cluster: EmbeddedCluster;

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'lbw-embedded-test-'));
    cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort() });
    await cluster.init();
  });
  after(async () => {
    await cluster?.stop();
    await rm(base, { recursive: true, force: true });
  });

  test('starts, keeps its data across a restart, and stops', async () => {
    await cluster.start();
    const c1 = new pg.Client({ connectionString: cluster.url });
    await c1.connect();
    await c1.query('CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
    c1.on('error', () => undefined);
    await c1.end();
    await cluster.stop();
    await cluster.start();
    const c2 = new pg.Client({ connectionString: cluster.url });
    await c2.connect();
    assert.equal((await c2.query('SELECT n FROM kept')).rows[0].n, 42);
    await c2.end();
    await cluster.stop();
  });

  test('as root, the server user can reach the binaries (every directory above them is world-traversable)', { skip: process.getuid?.() !== 0 && 'not running as root' }, async () => {
    assert.ok(cluster.binDir);
    assert.doesNotMatch(cluster.binDir, /node_modules/, 'a clone inside /root or a 0700 mktemp dir would be out of reach');
    for (let d = cluster.binDir; d !== path.dirname(d); d = path.dirname(d)) {
      assert.ok(((await stat(d)).mode & 0o001) !== 0, `${d} is not traversable by other users`);
    }
  });

  test('a port already taken is a clear rejected start naming the port, not an unhandled event or a hang', async () => {
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(cluster.options.port, '127.0.0.1', r));
    try {
      const t0 = Date.now();
      await assert.rejects(cluster.start(), (err: Error) => {
        assert.ok(err instanceof EmbeddedPostgresError);
        assert.match(err.message, new RegExp(`port ${cluster.options.port}`));
        assert.match(err.message, /could not bind|Address already in use|could not create any TCP\/IP sockets/i);
        return true;
      });
      assert.ok(Date.now() - t0 < 30_000);
    } finally {
      squatter.close();
    }
  });
});
