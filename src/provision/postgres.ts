import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedCluster } from './embeddedPostgres';
import type { Say } from './temporal';

export interface ProvisionedPostgres {
  /** Connection URL of a superuser-ish account, for creating the demo/test databases. */
  url: string;
  origin: 'DATABASE_URL' | 'local server' | 'embedded';
  stop(): Promise<void>;
  /** Embedded only: stop and start the server on the same data (fault tests). */
  restart?(pauseMs?: number): Promise<void>;
}

/**
 * The server probed as "the local PostgreSQL". LAKEBASE_LOCAL_POSTGRES_URL moves the probe, e.g.
 * to a closed port to act out a machine without PostgreSQL (CI does, since the shared server must
 * stay up for everyone else).
 */
export const LOCAL_POSTGRES_URL = process.env.LAKEBASE_LOCAL_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

const shown = (url: string) => url.replace(/:[^:@/]+@/, ':***@');

/** undefined when `url` answers `select 1`, else why not. */
async function whyNotAnswering(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return (err as Error).message || (err as NodeJS.ErrnoException).code || String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** DATABASE_URL (which must answer), else the local server, else an embedded PostgreSQL removed on stop(). */
export async function provisionPostgres(say: Say = () => undefined, opts: { forceEmbedded?: boolean } = {}): Promise<ProvisionedPostgres> {
  if (!opts.forceEmbedded) {
    const given = process.env.DATABASE_URL;
    if (given) {
      const problem = await whyNotAnswering(given);
      if (problem) throw new Error(`DATABASE_URL (${shown(given)}) does not answer: ${problem}. Fix it, or unset it to use a local or embedded PostgreSQL.`);
      return { url: given, origin: 'DATABASE_URL', stop: async () => undefined };
    }
    if (!(await whyNotAnswering(LOCAL_POSTGRES_URL))) return { url: LOCAL_POSTGRES_URL, origin: 'local server', stop: async () => undefined };
    say(`No PostgreSQL at ${shown(LOCAL_POSTGRES_URL)} and no DATABASE_URL: starting an embedded PostgreSQL…`);
  } else {
    say('Starting an embedded PostgreSQL…');
  }
  try {
    return await startEmbedded(say);
  } catch (err) {
    // A port taken between freePort() and the server's bind is worth one more try; anything else is not.
    if (!/could not bind|address already in use/i.test((err as Error).message)) throw err;
    say(`${(err as Error).message}; trying once more on another port…`);
    return startEmbedded(say);
  }
}

async function startEmbedded(say: Say): Promise<ProvisionedPostgres> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'lakebase-worker-pg-'));
  const dataDir = path.join(base, 'data');
  const server = new EmbeddedCluster({ dataDir, port: await freePort() });
  const stop = async () => {
    await server.stop();
    await rm(base, { recursive: true, force: true });
  };
  try {
    await withDeadline(server.init(), 120_000, 'initdb did not finish within 120 s');
    await server.start();
  } catch (err) {
    await stop();
    throw new Error(`embedded PostgreSQL did not start: ${(err as Error).message}`);
  }
  say(`Embedded PostgreSQL running on 127.0.0.1:${server.options.port} (data in ${dataDir}).`);
  return {
    url: server.url,
    origin: 'embedded',
    stop,
    async restart(pauseMs = 0) {
      await server.stop();
      await new Promise((r) => setTimeout(r, pauseMs));
      await server.start();
    },
  };
}

/** A TCP port the OS says is free now. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as import('node:net').AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function withDeadline<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

/** Drops and recreates a database, returning its URL. */
export async function freshDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
