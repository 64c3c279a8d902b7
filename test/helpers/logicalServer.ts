// A private PostgreSQL with wal_level=logical for the cdc tests (the shared server runs `replica`,
// and tests never change a shared server's settings): two databases and a client on each.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedCluster } from '../../src/provision/embeddedPostgres';
import { freePort } from '../../src/provision/postgres';
import { cleanUp } from './cleanup';

export interface LogicalServer {
  cluster: EmbeddedCluster;
  /** The server's directory (its data under data/); files a test puts here go with it. */
  dir: string;
  /** Connected to the first and the second database. */
  source: pg.Client;
  target: pg.Client;
  /** The connection string of `database` on this server. */
  url(database: string): string;
  /** A config environment for `database` (trust auth, no TLS). */
  environment(database: string, user?: string): { host: string; port: number; database: string; user: string; ssl: { mode: 'disable' } };
  /** Ends both clients, stops the server and removes its directory (each step even if one fails). */
  close(): Promise<void>;
}

export async function startLogicalServer(prefix: string, opts: { databases?: [string, string]; settings?: Record<string, string> } = {}): Promise<LogicalServer> {
  const [first, second] = opts.databases ?? ['src', 'tgt'];
  const base = await mkdtemp(path.join(os.tmpdir(), `lbw-${prefix}-`));
  const cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical', ...opts.settings } });
  const url = (database: string) => cluster.url.replace(/\/postgres$/, `/${database}`);
  const source = new pg.Client({ connectionString: url(first) });
  const target = new pg.Client({ connectionString: url(second) });
  const close = () =>
    cleanUp(
      () => source.end(),
      () => target.end(),
      () => cluster.stop(),
      () => rm(base, { recursive: true, force: true }),
    );
  try {
    await cluster.init();
    await cluster.start();
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${first}`);
    await admin.query(`CREATE DATABASE ${second}`);
    await admin.end();
    await source.connect();
    await target.connect();
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  const environment = (database: string, user = 'postgres') => ({ host: '127.0.0.1', port: cluster.options.port, database, user, ssl: { mode: 'disable' as const } });
  return { cluster, dir: base, source, target, url, environment, close };
}
